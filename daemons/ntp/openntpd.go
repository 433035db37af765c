package ntp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// The openntpd dialect: the ntp image answers to /usr/sbin/ntpd with
// openntpd's command line and ntpd.conf, so that a LinuxKit file that ran
// linuxkit/openntpd runs dyad-ntp by changing the image line only.

// DefaultOpenntpdConfigFile is where openntpd reads its configuration.
const DefaultOpenntpdConfigFile = "/etc/ntpd.conf"

// maxOpenntpdConf bounds the file read: -f may name anything.
const maxOpenntpdConf = 64 << 10

// parseOpenntpd reads an openntpd command line (without argv[0]): -d
// (stay in the foreground, as dyad-ntp does anyway), -s and -S (set the
// time at start-up or not: dyad-ntp steps at start-up whatever the
// offset), -v (debug), -n (check the configuration and exit), -f FILE.
func parseOpenntpd(args []string) (*Config, error) {
	c := newConfig()
	file := DefaultOpenntpdConfigFile
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			return nil, fmt.Errorf("command line, argument %d (%s): openntpd takes no operands", i+1, a)
		}
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case 'd', 's', 'S':
			case 'v':
				c.Debug = true
			case 'n':
				c.ConfigTest = true
			case 'f':
				v := a[j+1:]
				if v == "" {
					if i+1 == len(args) {
						return nil, fmt.Errorf("command line, argument %d: -f needs a file", i+1)
					}
					i++
					v = args[i]
				}
				file = v
				j = len(a)
			default:
				return nil, fmt.Errorf("command line, argument %d (%s): -%c is not an openntpd option dyad-ntp knows", i+1, a, a[j])
			}
		}
	}
	if err := c.readNtpdConf(file); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, file)
	}
	return c, nil
}

// readNtpdConf reads openntpd's ntpd.conf: servers and server name pools
// and single servers; what dyad-ntp does not do (serving time, sensors,
// HTTPS constraints) is an error or a warning naming the line.
func (c *Config) readNtpdConf(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxOpenntpdConf+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(b) > maxOpenntpdConf {
		return fmt.Errorf("config: %s: larger than %d bytes", path, maxOpenntpdConf)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxOpenntpdConf)
	for n := 1; sc.Scan(); n++ {
		where := fmt.Sprintf("%s:%d", path, n)
		line, _, _ := strings.Cut(sc.Text(), "#")
		words := strings.Fields(line)
		if len(words) == 0 {
			continue
		}
		if err := c.ntpdDirective(where, words); err != nil {
			return fmt.Errorf("config: %s: %w", where, err)
		}
	}
	return nil
}

func (c *Config) ntpdDirective(where string, w []string) error {
	switch w[0] {
	case "server", "servers":
		if len(w) < 2 {
			return fmt.Errorf("%s needs a name", w[0])
		}
		if err := checkHostName(w[1]); err != nil {
			return fmt.Errorf("%s %q: %w", w[0], w[1], err)
		}
		if rest := w[2:]; len(rest) > 0 {
			if rest[0] != "weight" || len(rest) != 2 {
				return fmt.Errorf("%s %s: unexpected %q", w[0], w[1], strings.Join(rest, " "))
			}
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: weight ignored: dyad-ntp weighs sources by their precision", where))
		}
		if w[0] == "servers" {
			c.Pools = append(c.Pools, w[1])
		} else {
			c.Servers = append(c.Servers, w[1])
		}
	case "listen":
		return errors.New("listen: dyad-ntp is a client and serves no time; remove the line (openntpd does not listen by default either)")
	case "sensor":
		return errors.New("sensor: dyad-ntp reads no time sensors")
	case "query", "rtable":
		return fmt.Errorf("%s: not supported by dyad-ntp", w[0])
	case "constraint", "constraints":
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s ignored: dyad-ntp makes no HTTPS requests; its sources' majority and panic threshold bound the clock", where, w[0]))
	default:
		return fmt.Errorf("unknown keyword %q", w[0])
	}
	return nil
}
