// Package privsep is the boundary between a daemon's unprivileged engine and
// its privileged actuator: the typed pipe between them, the catalogue of
// every message that may cross it, and the policy that checks each request
// before the actuator performs it.
//
// This file is the catalogue. Every message a process may send over the
// pipe is declared here and nowhere else; a reader auditing what an engine
// can ask of the host reads this file and the daemon's grant.
package privsep

import (
	"net/netip"
)

// ProtocolVersion is carried by Hello and Welcome; both sides refuse a peer
// that speaks another version.
const ProtocolVersion = 1

// Kind names a message on the wire. Requests are the operations an engine
// may ask for; the others are the fixed conversation around them.
type Kind string

// The conversation.
const (
	KindHello   Kind = "hello"   // engine → actuator, first message
	KindWelcome Kind = "welcome" // actuator → engine, answers Hello
	KindReply   Kind = "reply"   // actuator → engine, answers every request
	KindLink    Kind = "link"    // actuator → engine, a link appeared or changed
)

// The operations: what an engine may ask the actuator to do to the host.
const (
	OpLinkUp       Kind = "link.up"
	OpLinkMTU      Kind = "link.mtu"
	OpAddrReplace  Kind = "addr.replace"
	OpAddrRemove   Kind = "addr.remove"
	OpRouteReplace Kind = "route.replace"
	OpRouteRemove  Kind = "route.remove"
	OpResolvConf   Kind = "file.resolvconf"
	OpNTPServers   Kind = "file.ntpservers"
	OpHostname     Kind = "hostname.set"
	OpLeaseSave    Kind = "lease.save"
	OpLeaseDrop    Kind = "lease.drop"

	OpClockRead      Kind = "clock.read"
	OpClockSlew      Kind = "clock.slew"
	OpClockFrequency Kind = "clock.frequency"
	OpClockStep      Kind = "clock.step"
	OpClockStatus    Kind = "clock.status"
)

// Message is anything that crosses the pipe.
type Message interface {
	Kind() Kind
}

// newMessage returns a zero value of the message a kind names, for the
// decoder to fill; nil for a kind the catalogue does not know.
func newMessage(k Kind) Message {
	switch k {
	case KindHello:
		return &Hello{}
	case KindWelcome:
		return &Welcome{}
	case KindReply:
		return &Reply{}
	case KindLink:
		return &LinkEvent{}
	case OpLinkUp:
		return &LinkUp{}
	case OpLinkMTU:
		return &LinkMTU{}
	case OpAddrReplace:
		return &AddrReplace{}
	case OpAddrRemove:
		return &AddrRemove{}
	case OpRouteReplace:
		return &RouteReplace{}
	case OpRouteRemove:
		return &RouteRemove{}
	case OpResolvConf:
		return &ResolvConf{}
	case OpNTPServers:
		return &NTPServers{}
	case OpHostname:
		return &Hostname{}
	case OpLeaseSave:
		return &LeaseSave{}
	case OpLeaseDrop:
		return &LeaseDrop{}
	case OpClockRead:
		return &ClockRead{}
	case OpClockSlew:
		return &ClockSlew{}
	case OpClockFrequency:
		return &ClockFrequency{}
	case OpClockStep:
		return &ClockStep{}
	case OpClockStatus:
		return &ClockStatus{}
	}
	return nil
}

// IsOperation reports whether k is a request for a host change, as opposed
// to the conversation around requests.
func IsOperation(k Kind) bool {
	switch k {
	case KindHello, KindWelcome, KindReply, KindLink:
		return false
	}
	return newMessage(k) != nil
}

// IsClockOperation reports whether k is one of the clock's operations,
// whose replies carry the clock's state.
func IsClockOperation(k Kind) bool {
	switch k {
	case OpClockRead, OpClockSlew, OpClockFrequency, OpClockStep, OpClockStatus:
		return true
	}
	return false
}

// Hello opens the conversation. Daemon names the engine's daemon so that an
// engine started against the wrong actuator fails at once.
type Hello struct {
	Version int    `cbor:"1,keyasint"`
	Daemon  string `cbor:"2,keyasint"`
}

// Welcome answers Hello. Config is the daemon-specific engine configuration,
// itself strictly decoded by the engine.
type Welcome struct {
	Version int    `cbor:"1,keyasint"`
	Config  []byte `cbor:"2,keyasint"`
}

// WelcomeWith is the Welcome that carries config, a daemon's engine
// configuration.
func WelcomeWith(config any) (*Welcome, error) {
	b, err := MarshalValue(config)
	if err != nil {
		return nil, err
	}
	return &Welcome{Config: b}, nil
}

// Reply answers one request. An empty Error means the operation was done.
// Clock carries the clock's state after a clock operation.
type Reply struct {
	Error string      `cbor:"1,keyasint,omitempty"`
	Clock *ClockState `cbor:"2,keyasint,omitempty"`
}

// LinkEvent tells the engine about an interface it may manage.
type LinkEvent struct {
	Index        int    `cbor:"1,keyasint"`
	Name         string `cbor:"2,keyasint"`
	HardwareAddr []byte `cbor:"3,keyasint"`
	AdminUp      bool   `cbor:"4,keyasint"`
	Carrier      bool   `cbor:"5,keyasint"`
	MTU          int    `cbor:"6,keyasint"`
	Gone         bool   `cbor:"7,keyasint,omitempty"`
}

// LinkUp brings an owned link administratively up.
type LinkUp struct {
	Interface string `cbor:"1,keyasint"`
}

// LinkMTU sets an owned link's MTU.
type LinkMTU struct {
	Interface string `cbor:"1,keyasint"`
	MTU       int    `cbor:"2,keyasint"`
}

// AddrReplace installs (or refreshes) an IPv4 address on an owned link. The
// lifetimes are in seconds and come from the lease, so that the kernel drops
// the address by itself if the daemon is gone when the lease runs out.
type AddrReplace struct {
	Interface         string       `cbor:"1,keyasint"`
	Address           netip.Prefix `cbor:"2,keyasint"`
	ValidLifetime     uint32       `cbor:"3,keyasint"`
	PreferredLifetime uint32       `cbor:"4,keyasint"`
}

// AddrRemove removes an address this daemon installed.
type AddrRemove struct {
	Interface string       `cbor:"1,keyasint"`
	Address   netip.Prefix `cbor:"2,keyasint"`
}

// Route is an IPv4 route through an owned link. A zero Gateway means the
// destination is on-link.
type Route struct {
	Interface   string       `cbor:"1,keyasint"`
	Destination netip.Prefix `cbor:"2,keyasint"`
	Gateway     netip.Addr   `cbor:"3,keyasint"`
	Source      netip.Addr   `cbor:"4,keyasint"`
	Metric      uint32       `cbor:"5,keyasint,omitempty"`
}

// RouteReplace installs a route, tagged as installed by DHCP.
type RouteReplace struct {
	Route Route `cbor:"1,keyasint"`
}

// RouteRemove removes a route this daemon installed.
type RouteRemove struct {
	Route Route `cbor:"1,keyasint"`
}

// ResolvConf asks for the resolver configuration to be written at the
// configured path. The actuator renders the file itself: the engine sends
// values, never text.
type ResolvConf struct {
	Nameservers []netip.Addr `cbor:"1,keyasint"`
	Domain      string       `cbor:"2,keyasint,omitempty"`
	Search      []string     `cbor:"3,keyasint,omitempty"`
}

// NTPServers asks for the list of NTP servers to be written at the
// configured path, one address per line, for dyad-ntp to read.
type NTPServers struct {
	Servers []netip.Addr `cbor:"1,keyasint"`
}

// Hostname sets the host name.
type Hostname struct {
	Name string `cbor:"1,keyasint"`
}

// Lease is what a DHCP client holds for one interface, as applied and as
// saved for INIT-REBOOT after a restart.
type Lease struct {
	Interface  string       `cbor:"1,keyasint" json:"interface"`
	Address    netip.Prefix `cbor:"2,keyasint" json:"address"`
	Server     netip.Addr   `cbor:"3,keyasint" json:"server"`
	Routers    []netip.Addr `cbor:"4,keyasint,omitempty" json:"routers,omitempty"`
	Routes     []Route      `cbor:"5,keyasint,omitempty" json:"routes,omitempty"`
	DNS        []netip.Addr `cbor:"6,keyasint,omitempty" json:"dns,omitempty"`
	Domain     string       `cbor:"7,keyasint,omitempty" json:"domain,omitempty"`
	Search     []string     `cbor:"8,keyasint,omitempty" json:"search,omitempty"`
	Hostname   string       `cbor:"9,keyasint,omitempty" json:"hostname,omitempty"`
	NTP        []netip.Addr `cbor:"10,keyasint,omitempty" json:"ntp,omitempty"`
	MTU        int          `cbor:"11,keyasint,omitempty" json:"mtu,omitempty"`
	LeaseTime  uint32       `cbor:"12,keyasint" json:"lease_time"`
	RenewTime  uint32       `cbor:"13,keyasint" json:"renew_time"`
	RebindTime uint32       `cbor:"14,keyasint" json:"rebind_time"`
	// Acquired is when the lease was granted, in Unix seconds.
	Acquired int64 `cbor:"15,keyasint" json:"acquired"`
}

// LeaseSave stores a lease in the state directory.
type LeaseSave struct {
	Lease Lease `cbor:"1,keyasint"`
}

// LeaseDrop deletes the stored lease of an interface (after RELEASE or
// expiry).
type LeaseDrop struct {
	Interface string `cbor:"1,keyasint"`
}

// ClockState is what the kernel says of the system clock, as the actuator
// read it just after an operation. Time lets the engine read the clock
// the actuator disciplines when that clock is the simulated one.
type ClockState struct {
	Time int64 `cbor:"1,keyasint"` // the clock's reading, Unix nanoseconds
	// Frequency is the correction to the clock's rate, parts per
	// million scaled by 2^16 as the kernel keeps it.
	Frequency int64 `cbor:"2,keyasint"`
	// Slewing is what is left of the last slew, nanoseconds.
	Slewing  int64 `cbor:"3,keyasint"`
	Synced   bool  `cbor:"4,keyasint"`
	Leap     int   `cbor:"5,keyasint"`
	MaxError int64 `cbor:"6,keyasint"` // microseconds
	EstError int64 `cbor:"7,keyasint"` // microseconds
	// Set says the actuator has corrected the clock already: the panic
	// threshold holds from then on, whichever engine asks.
	Set bool `cbor:"8,keyasint,omitempty"`
	// Offset is how far the clock stands from the host's CLOCK_REALTIME,
	// nanoseconds: zero for the system clock, the error of the simulated
	// one, which the engine then reads as the host's clock plus Offset.
	Offset int64 `cbor:"9,keyasint,omitempty"`
}

// ClockRead asks for the clock's state and changes nothing.
type ClockRead struct{}

// ClockSlew corrects the clock by Offset nanoseconds gradually, replacing
// any slew still in progress.
type ClockSlew struct {
	Offset int64 `cbor:"1,keyasint"`
}

// ClockFrequency sets the correction to the clock's rate, in parts per
// million scaled by 2^16 (the kernel's unit).
type ClockFrequency struct {
	Frequency int64 `cbor:"1,keyasint"`
}

// ClockStep moves the clock by Offset nanoseconds at once.
type ClockStep struct {
	Offset int64 `cbor:"1,keyasint"`
}

// ClockStatus tells the kernel whether the clock is synchronised, how far
// it may be off (microseconds), and of a coming leap second (Leap: 0 none,
// 1 insert, 2 delete). A synchronised kernel clock is what lets the kernel
// copy it to the RTC.
type ClockStatus struct {
	Synced   bool  `cbor:"1,keyasint"`
	Leap     int   `cbor:"2,keyasint"`
	MaxError int64 `cbor:"3,keyasint"`
	EstError int64 `cbor:"4,keyasint"`
}

func (*Hello) Kind() Kind          { return KindHello }
func (*Welcome) Kind() Kind        { return KindWelcome }
func (*Reply) Kind() Kind          { return KindReply }
func (*LinkEvent) Kind() Kind      { return KindLink }
func (*LinkUp) Kind() Kind         { return OpLinkUp }
func (*LinkMTU) Kind() Kind        { return OpLinkMTU }
func (*AddrReplace) Kind() Kind    { return OpAddrReplace }
func (*AddrRemove) Kind() Kind     { return OpAddrRemove }
func (*RouteReplace) Kind() Kind   { return OpRouteReplace }
func (*RouteRemove) Kind() Kind    { return OpRouteRemove }
func (*ResolvConf) Kind() Kind     { return OpResolvConf }
func (*NTPServers) Kind() Kind     { return OpNTPServers }
func (*Hostname) Kind() Kind       { return OpHostname }
func (*LeaseSave) Kind() Kind      { return OpLeaseSave }
func (*LeaseDrop) Kind() Kind      { return OpLeaseDrop }
func (*ClockRead) Kind() Kind      { return OpClockRead }
func (*ClockSlew) Kind() Kind      { return OpClockSlew }
func (*ClockFrequency) Kind() Kind { return OpClockFrequency }
func (*ClockStep) Kind() Kind      { return OpClockStep }
func (*ClockStatus) Kind() Kind    { return OpClockStatus }
