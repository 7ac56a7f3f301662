package agent

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/testkit"
)

// TestRestartMidServing: clients are in the middle of downloads when the
// agent stops; they retry, the restarted agent (same tree, same state)
// serves them, and every download ends verified. The restarted agent
// also knows its upstream again, for pull-through.
func TestRestartMidServing(t *testing.T) {
	w := newWorld(t)
	old := w.publish("pattern", "1.0", 1000, "a.ptn")
	files := w.publish("pattern", "2.0", 1<<20, "big.ptn")
	first := w.startAgent("ua-1", func(o *Options) {
		o.BandwidthLimit = 1 << 20
		o.ShutdownTimeout = time.Millisecond
	})
	first.refresh(t, w.url)
	target := "components/pattern/2.0/big.ptn"
	want := sha256.Sum256(files[target])
	c := w.client(fetch.Options{})
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := filepath.Join(c.dir, fmt.Sprintf("c%d", i))
			errs[i] = retry(200, 20*time.Millisecond, func() error {
				return c.fetchFile(context.Background(), first.url, target, dst)
			})
			if got, _ := os.ReadFile(dst); errs[i] == nil && sha256.Sum256(got) != want {
				errs[i] = fmt.Errorf("client %d: content differs", i)
			}
		}()
	}
	testkit.Eventually(t, time.Minute, "every client to be mid-transfer", func() bool {
		return midTransfer(c.dir) >= len(errs)
	})
	addr := first.o.Listener.Addr().String()
	first.stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	o := first.o
	o.Listener, o.BandwidthLimit = ln, 0
	second := w.runAgent(o)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if second.Status().Requests == 0 {
		t.Fatal("the restarted agent served nothing")
	}
	oldTarget := "components/pattern/1.0/a.ptn"
	if resp, body := get(t, consistentURL(second.url, oldTarget, old[oldTarget]), nil); resp.StatusCode != 200 || string(body) != string(old[oldTarget]) {
		t.Fatalf("pull-through after restart: %s", resp.Status)
	}
}

// midTransfer counts the partial downloads in dir holding some bytes.
func midTransfer(dir string) int {
	n := 0
	parts, _ := filepath.Glob(filepath.Join(dir, "c*.part"))
	for _, p := range parts {
		if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
			n++
		}
	}
	return n
}

// TestTraversal: no request reaches a file outside the served tree, nor a
// temporary file inside it, however the path is encoded.
func TestTraversal(t *testing.T) {
	w := newWorld(t)
	w.publish("pattern", "1.0", 1000, "a.ptn")
	a := w.startAgent("ua-1", nil)
	a.refresh(t, w.url)
	const secret = "SECRET-OUTSIDE-THE-TREE"
	base := filepath.Dir(a.dir)
	os.WriteFile(filepath.Join(base, "secret.txt"), []byte(secret), 0o644)
	os.WriteFile(filepath.Join(a.state, "secret.txt"), []byte(secret), 0o644)
	os.MkdirAll(filepath.Join(a.dir, ".pull"), 0o755)
	os.WriteFile(filepath.Join(a.dir, ".pull", "partial"), []byte(secret), 0o644)
	os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(a.dir, "vendor", "metadata", "99.snapshot.json"))
	paths := []string{
		"/../secret.txt", "/vendor/../../secret.txt", "/vendor/metadata/../../../state/secret.txt",
		"/%2e%2e/secret.txt", "/vendor/%2e%2e/%2e%2e/secret.txt", "/vendor/..%2f..%2fsecret.txt",
		"/%252e%252e/secret.txt", "/vendor/%252e%252e%252f%252e%252e%252fsecret.txt",
		"/vendor/targets/..%5c..%5c..%5csecret.txt", "/vendor\\..\\..\\secret.txt", "//secret.txt",
		"/.pull/partial", "/%2epull/partial", "/vendor/metadata/99.snapshot.json",
		"/vendor/targets/components/pattern/1.0/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f..%2fsecret.txt",
		"/vendor/metadata/%00timestamp.json", "/state/secret.txt", "/" + filepath.Base(base) + "/secret.txt",
	}
	for _, p := range paths {
		code, body, loc := rawGet(t, a.o.Listener.Addr().String(), p)
		if strings.Contains(body, secret) {
			t.Fatalf("%s leaked the secret", p)
		}
		if code == http.StatusMovedPermanently || code == http.StatusTemporaryRedirect {
			code, body, _ = rawGet(t, a.o.Listener.Addr().String(), loc)
			if strings.Contains(body, secret) {
				t.Fatalf("%s -> %s leaked the secret", p, loc)
			}
		}
		if code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("%s: status %d", p, code)
		}
	}
}

// rawGet sends a request line exactly as given and returns the status,
// body and Location.
func rawGet(t *testing.T, addr, path string) (int, string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// TestHTTPS: given a certificate, the agent serves over TLS and a client
// that trusts the certificate updates from it.
func TestHTTPS(t *testing.T) {
	w := newWorld(t)
	files := w.publish("pattern", "1.0", 1000, "a.ptn")
	dir := t.TempDir()
	pool := selfSigned(t, dir, "127.0.0.1")
	w.nextIP.Store(-1) // the certificate names 127.0.0.1
	a := w.startAgent("ua-tls", func(o *Options) {
		o.CertFile, o.KeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	})
	a.refresh(t, w.url)
	c := w.client(fetch.Options{TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	u := "https://" + a.o.Listener.Addr().String() + "/"
	target := "components/pattern/1.0/a.ptn"
	dst := filepath.Join(c.dir, "a")
	if err := c.fetchFile(context.Background(), u, target, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != string(files[target]) {
		t.Fatal("content differs")
	}
}

// selfSigned writes cert.pem and key.pem for ip into dir and returns a
// pool trusting the certificate.
func selfSigned(t *testing.T, dir, ip string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{netip.MustParseAddr(ip).AsSlice()}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
