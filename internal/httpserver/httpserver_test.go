package httpserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/testkit"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// start runs Run in a goroutine and returns its result channel.
func start(ctx context.Context, srv *http.Server, ln net.Listener, opts Options) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Run(ctx, srv, ln, opts) }()
	return done
}

// wait fails the test if done does not deliver within a generous bound
// (a guard against hanging, not a timing assertion).
func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

func hello(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }

func TestRunServesUntilCancelled(t *testing.T) {
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := start(ctx, NewServer(http.HandlerFunc(hello), nil), ln, Options{})
	url := "http://" + ln.Addr().String() + "/"
	if _, got := testkit.Get(t, nil, url, nil); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("still listening after shutdown")
	}
}

func TestRunLetsRequestsFinish(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	})
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := start(ctx, NewServer(h, nil), ln, Options{ShutdownTimeout: time.Minute})
	body := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			body <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body <- string(b)
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned with a request in flight: %v", err)
	default:
	}
	close(release)
	if got := <-body; got != "finished" {
		t.Fatalf("in-flight request got %q", got)
	}
	if err := wait(t, done); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunShutdownTimeout(t *testing.T) {
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // until the connection is cut
	})
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := start(ctx, NewServer(h, nil), ln, Options{ShutdownTimeout: 50 * time.Millisecond})
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	if err := wait(t, done); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v, want the shutdown deadline", err)
	}
}

func TestRunServeError(t *testing.T) {
	ln := listen(t)
	ln.Close()
	err := wait(t, start(context.Background(), NewServer(http.HandlerFunc(hello), nil), ln, Options{}))
	if err == nil {
		t.Fatal("no error serving a closed listener")
	}
}

func TestRunTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := start(ctx, NewServer(http.HandlerFunc(hello), nil), ln, Options{CertFile: certFile, KeyFile: keyFile})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, got := testkit.Get(t, c, "https://"+ln.Addr().String()+"/", nil); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestRunTLSBadFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	err := wait(t, start(context.Background(), NewServer(http.HandlerFunc(hello), nil), listen(t),
		Options{CertFile: missing, KeyFile: missing}))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing files: %v", err)
	}
	err = wait(t, start(context.Background(), NewServer(http.HandlerFunc(hello), nil), listen(t),
		Options{CertFile: missing}))
	if err == nil {
		t.Fatal("certificate without key accepted")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cascade test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
