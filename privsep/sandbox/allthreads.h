// See allthreads.c.

int dyad_ll_begin(int fd, unsigned int flags);
int dyad_caps_begin(unsigned long long keep, int last, int leave_bounding);
int dyad_round_end(void);
int dyad_ll_signal(int pid, int tid);
int dyad_ll_done(int tid, int *err);
