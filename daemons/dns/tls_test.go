package dns_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/dyad-project/dyad/daemons/dns"
	"github.com/dyad-project/dyad/internal/testnet"
)

// selfSigned writes a key and a self-signed certificate for name into dir
// and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir, name string) (keyPath, certPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, certPath = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return keyPath, certPath, pool
}

// startTLSUnbound runs unbound serving example.test. over TLS on the
// server's address, port 853, with a certificate for dns.example.test
// written in dir.
func startTLSUnbound(t *testing.T, n *testnet.Net, dir string) (u *testnet.Proc, tlsAddr netip.AddrPort, certPath string, pool *x509.CertPool) {
	t.Helper()
	testnet.RequireTools(t, "unbound")
	key, cert, pool := selfSigned(t, dir, "dns.example.test")
	addr := n.ServerAddr.Addr().String()
	conf := testnet.UnboundConf(t, addr, 53, []string{"interface: " + addr + "@853", "tls-port: 853", "tls-service-key: " + key, "tls-service-pem: " + cert,
		`module-config: "iterator"`, `local-zone: "test." nodefault`, `local-zone: "example.test." static`,
		`local-data: "example.test. 3600 IN SOA ns.example.test. host.example.test. 1 7200 900 1209600 60"`,
		`local-data: "www.example.test. 300 IN A 192.0.2.80"`, `local-zone: "." refuse`})
	u = n.Start(t, n.Server, "unbound", "-d", "-c", conf)
	return u, netip.MustParseAddrPort(addr + ":853"), cert, pool
}

// TestDaemonOverTLS runs dyad-dns with its only upstream asked over TLS
// (tls_upstreams, tls_ca_file): kdig's question is answered through it.
func TestDaemonOverTLS(t *testing.T) {
	testnet.RequireRoot(t)
	n := testnet.NewNet(t)
	stub := n.AddClientAddress(t).Addr()
	dir := publicDir(t)
	u, tlsAddr, cert, _ := startTLSUnbound(t, n, dir)
	conf := filepath.Join(dir, "dns.yaml")
	body := fmt.Sprintf("listen: [%s]\ntls_upstreams: {%q: dns.example.test}\ntls_ca_file: %s\nupstreams_file: none\nhosts_file: none\nresolv_conf: none\n", stub, tlsAddr, cert)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := n.Start(t, n.Client, binary(t), "-f", conf, "--run-dir", filepath.Join(dir, "run"))
	if !d.WaitLog("msg=upstreams daemon=dyad-dns proc=engine", 10*time.Second) {
		t.Fatalf("no engine\n%s", d.Output())
	}
	var r kdigAnswer
	if !testnet.WaitFor(5*time.Second, func() bool { r = kdig(t, n, stub, "www.example.test.", "A"); return len(r.AnswerRRs) == 1 }) {
		t.Fatalf("www over TLS: %+v\n%s\n%s", r, d.Output(), u.Output())
	}
}

// TestForwarderOverTLS asks unbound serving DNS over TLS (port 853) with a
// certificate for dns.example.test: the forwarder gets the answer when it
// expects that name and that authority, and none when it expects another
// name.
func TestForwarderOverTLS(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTools(t, "unbound")
	n := testnet.NewNet(t)
	n.AddClientAddress(t)
	u, tlsAddr, _, pool := startTLSUnbound(t, n, t.TempDir())
	ask := func(name string) (*mdns.Msg, error) {
		f, err := dns.NewForwarder(dns.ForwarderConfig{Routes: []dns.Route{{Domain: ".", Upstreams: []netip.AddrPort{tlsAddr}}},
			TLS: map[netip.AddrPort]string{tlsAddr: name}, RootCAs: pool, Dial: n.Dialer(t, n.Client), Timeout: 2 * time.Second})
		if err != nil {
			return nil, err
		}
		var m *mdns.Msg
		err = nil
		if !testnet.WaitFor(5*time.Second, func() bool {
			m, err = forward(f, "www.example.test.", mdns.TypeA)
			return err == nil || name != "dns.example.test"
		}) {
			return nil, err
		}
		return m, err
	}
	m, err := ask("dns.example.test")
	if err != nil || len(m.Answer) != 1 {
		t.Fatalf("over TLS: %v, %v\n%s", m, err, u.Output())
	}
	if _, err := ask("other.example.test"); !errors.Is(err, dns.ErrNoUpstream) {
		t.Errorf("a certificate for another name: %v, want no upstream", err)
	}
}
