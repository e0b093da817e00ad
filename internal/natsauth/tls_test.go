package natsauth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/natsauth"
)

// A server with a certificate from a private CA, as deploy/README.md
// makes one: a client given the CA (ORDO_NATS_CA) and a seed
// (ORDO_NATS_CREDS) connects over tls://; without the CA it does not.
func TestExternalTLSWithAPrivateCA(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCertificates(t, dir)
	keys, err := natsauth.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile, Timeout: 2})
	if err != nil {
		t.Fatal(err)
	}
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Users: keys.Users(),
		Configure: func(o *server.Options) { o.TLSConfig, o.TLSTimeout = tlsConfig, 2 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	url := strings.Replace(s.ClientURL(), "nats://", "tls://", 1)
	seed, err := keys.WriteSeed(dir, natsauth.Auditor)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := natsauth.External{CredsFile: seed, CAFile: caFile}.Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("over TLS with the CA: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("the connection is not TLS")
	}
	nc.Close()
	opts, _ = natsauth.External{CredsFile: seed}.Options()
	if nc, err := nats.Connect(url, append(opts, nats.Timeout(5*time.Second))...); err == nil {
		nc.Close()
		t.Fatal("connected without trusting the CA")
	} else {
		t.Logf("without the CA: %v", err)
	}
}

// writeCertificates makes a CA and a server certificate for 127.0.0.1.
func writeCertificates(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caPub, caKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ordo-nats-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caPub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ordo-a"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server-cert.pem", "CERTIFICATE", leafDER), write("server-key.pem", "PRIVATE KEY", keyDER)
}
