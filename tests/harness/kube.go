package harness

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// KubeVersion is the Kubernetes release whose kube-apiserver the harness
// builds and runs. It must match the k8s.io/kubernetes requirement in
// tests/tools/kube-apiserver/go.mod.
const KubeVersion = "v1.36.3"

// Etcd is an etcd server started for a test.
type Etcd struct {
	// URL is the client endpoint, such as http://127.0.0.1:43127.
	URL string
	// DataDir holds the etcd database. It outlives a restart of the
	// API server that uses it.
	DataDir string

	proc *Process
}

// StartEtcd starts a single-member etcd on free loopback ports with its data
// in the test's temporary directory. It is stopped when the test ends.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	ensureDebian(t, []string{"etcd"}, "etcd-server")

	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	e := &Etcd{URL: client, DataDir: filepath.Join(dir, "data")}
	e.proc = StartProcess(t, dir, "etcd", nil, "etcd",
		"--name=weft",
		"--data-dir="+e.DataDir,
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=weft="+peer,
		"--initial-cluster-state=new",
		// zap at warn keeps the log to what matters; the default
		// capnslog logger is deprecated and chatty.
		"--logger=zap",
		"--log-outputs=stderr",
		"--log-level=warn",
	)
	WaitFor(t, 30*time.Second, "etcd", func() error {
		if exited, err := e.proc.Exited(); exited {
			return fmt.Errorf("etcd exited: %v\n%s", err, tail(e.proc.LogPath, 20))
		}
		resp, err := http.Get(client + "/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"true"`)) {
			return fmt.Errorf("etcd /health: %s: %s", resp.Status, b)
		}
		return nil
	})
	return e
}

// Kube is a Kubernetes control plane reduced to what the API needs: etcd and
// kube-apiserver, on loopback. There is no scheduler, controller manager or
// kubelet, so nothing happens by itself: tests create the objects they need
// and set Pod and Node status themselves through the /status subresource.
type Kube struct {
	// Host is the API server's address, such as https://127.0.0.1:41231.
	Host string
	// Token is a bearer token of a member of system:masters.
	Token string
	// KubeconfigPath is a kubeconfig file for Host, CAFile and Token.
	KubeconfigPath string
	// CAFile holds the certificates that verify the API server's serving
	// certificate (the server's self-signed certificate and its CA).
	CAFile string
	// Etcd is the etcd that stores the cluster's objects.
	Etcd *Etcd

	dir    string
	bin    string
	args   []string
	client *http.Client
	proc   *Process
}

// StartKube starts etcd and a kube-apiserver, waits until the API server is
// ready, and stops both when the test ends. The first call on a machine
// builds kube-apiserver from Go modules, which takes a few minutes.
//
// The API server authenticates Token as a member of system:masters and
// authorizes with RBAC. Its ServiceAccount admission plugin is off, because
// without a controller manager no namespace ever gets its "default"
// ServiceAccount and every Pod would be refused.
func StartKube(t testing.TB) *Kube {
	t.Helper()
	bin := kubeAPIServer(t)
	etcd := StartEtcd(t)

	dir := t.TempDir()
	k := &Kube{
		Etcd:           etcd,
		Token:          randomToken(t),
		KubeconfigPath: filepath.Join(dir, "kubeconfig"),
		// The API server writes its self-signed certificate here on
		// first start and reuses it on a restart. The file holds the
		// serving certificate followed by the CA that signed it.
		CAFile: filepath.Join(dir, "pki", "apiserver.crt"),
		dir:    dir,
		bin:    bin,
	}
	port := FreePort(t)
	k.Host = fmt.Sprintf("https://127.0.0.1:%d", port)

	saKey, saPub := writeServiceAccountKeys(t, dir)
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(k.Token+",admin,admin,system:masters\n"), 0o600); err != nil {
		t.Fatalf("write %s: %v", tokens, err)
	}
	k.args = []string{
		"--etcd-servers=" + etcd.URL,
		"--secure-port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		// Advertising loopback keeps the server from looking for a
		// host interface. The endpoint reconciler would then try to
		// publish 127.0.0.1 as the endpoint of the "kubernetes"
		// Service, which validation rejects, so it is turned off.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(dir, "pki"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey,
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/16",
		// ServiceAccount admission refuses Pods in namespaces without
		// a "default" ServiceAccount, which only a controller manager
		// creates.
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	}
	if err := k.writeKubeconfig(); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}

	t.Cleanup(k.StopAPIServer)
	k.StartAPIServer(t)
	return k
}

// StartAPIServer starts the API server again after StopAPIServer, on the
// same port, with the same certificates, token and etcd data. It is stopped
// when t ends at the latest.
func (k *Kube) StartAPIServer(t testing.TB) {
	t.Helper()
	if k.proc != nil {
		if exited, _ := k.proc.Exited(); !exited {
			t.Fatalf("kube-apiserver is already running")
		}
	}
	start := time.Now()
	k.proc = StartProcess(t, k.dir, "kube-apiserver", nil, k.bin, k.args...)
	proc := k.proc
	WaitFor(t, 3*time.Minute, "kube-apiserver", func() error {
		if exited, err := proc.Exited(); exited {
			return fmt.Errorf("kube-apiserver exited: %v\n%s", err, tail(proc.LogPath, 30))
		}
		if k.client == nil {
			c, err := k.newClient()
			if err != nil {
				return err // The certificate is not written yet.
			}
			k.client = c
		}
		code, body, err := k.do("GET", "/readyz", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz: %d: %s", code, body)
		}
		return nil
	})
	t.Logf("kube-apiserver ready at %s after %s", k.Host, time.Since(start).Round(100*time.Millisecond))
}

// StopAPIServer stops the API server and leaves etcd running, so that a test
// can see how clients live through an API server outage. Stopping a stopped
// API server does nothing.
func (k *Kube) StopAPIServer() {
	if k.proc == nil {
		return
	}
	// Process.Stop kills the server when it does not end in time, so
	// it is gone either way and the port is free for StartAPIServer.
	_ = k.proc.Stop(30 * time.Second)
}

// Do sends a request to the API server as the admin user and returns the
// status code and the body of the answer. path is absolute, such as
// /api/v1/namespaces. body is nil, a []byte or string sent as it is, or any
// other value sent as JSON. PATCH bodies are JSON merge patches. A request
// that gets no answer fails the test; an answer with an error status is
// returned for the caller to judge.
func (k *Kube) Do(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	code, b, err := k.do(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return code, b
}

// DoJSON is Do for requests that must succeed: it fails the test unless the
// status is 2xx, and decodes the answer into out when out is not nil.
func (k *Kube) DoJSON(t testing.TB, method, path string, body, out any) {
	t.Helper()
	code, b := k.Do(t, method, path, body)
	if code < 200 || code > 299 {
		t.Fatalf("%s %s: status %d: %s", method, path, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode answer: %v\n%s", method, path, err, b)
		}
	}
}

func (k *Kube) do(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return 0, nil, fmt.Errorf("encode body: %w", err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, k.Host+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+k.Token)
	req.Header.Set("Accept", "application/json")
	if r != nil {
		ct := "application/json"
		if method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if k.client == nil {
		return 0, nil, errors.New("kube-apiserver was never started")
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// newClient returns an HTTP client that trusts the API server's
// self-signed certificate, once the server has written it.
func (k *Kube) newClient() (*http.Client, error) {
	pemBytes, err := os.ReadFile(k.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("no certificate in %s yet", k.CAFile)
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
		},
	}, nil
}

// writeKubeconfig writes a kubeconfig for client-go and kubectl. It names
// the CA file, which exists once the API server has started.
func (k *Kube) writeKubeconfig() error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: weft
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: weft
  context:
    cluster: weft
    user: admin
current-context: weft
`, k.Host, k.CAFile, k.Token)
	return os.WriteFile(k.KubeconfigPath, []byte(cfg), 0o600)
}

// writeServiceAccountKeys writes the RSA key pair that the API server signs
// and verifies service account tokens with, and returns their paths.
func writeServiceAccountKeys(t testing.TB, dir string) (keyPath, pubPath string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate service account key: %v", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatalf("encode service account public key: %v", err)
	}
	keyPath = filepath.Join(dir, "sa.key")
	pubPath = filepath.Join(dir, "sa.pub")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatalf("write %s: %v", keyPath, err)
	}
	if err := os.WriteFile(pubPath, pubPEM, 0o644); err != nil {
		t.Fatalf("write %s: %v", pubPath, err)
	}
	return keyPath, pubPath
}

func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random token: %v", err)
	}
	return hex.EncodeToString(b)
}

// kubeAPIServer returns the path of the kube-apiserver binary, building it
// from the module in tests/tools/kube-apiserver into the cache directory
// when it is not there yet. The binary is never part of the repository.
func kubeAPIServer(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(CacheDir(), "kube-apiserver", KubeVersion)
	bin := filepath.Join(dir, "kube-apiserver")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	err := withInstallLock("kube-apiserver", func() error {
		if _, err := os.Stat(bin); err == nil {
			return nil // Another test binary built it meanwhile.
		}
		gobin, err := exec.LookPath("go")
		if err != nil {
			return fmt.Errorf("the Go toolchain is needed to build it: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		t.Logf("building kube-apiserver %s into %s (a few minutes, once per machine)", KubeVersion, dir)
		start := time.Now()
		// Build into a temporary name and rename, so that an
		// interrupted build never leaves a broken binary behind.
		tmp := bin + ".tmp"
		mod := filepath.Join(RepoRoot(), "tests", "tools", "kube-apiserver")
		args := []string{"-C", mod, "build", "-ldflags", kubeLDFlags(), "-o", tmp,
			"k8s.io/kubernetes/cmd/kube-apiserver"}
		// CGO_ENABLED=0 gives a static binary, as Kubernetes releases
		// are; GOWORK=off keeps a go.work file above from taking over.
		env := []string{"CGO_ENABLED=0", "GOWORK=off"}
		if out, err := run(30*time.Minute, env, gobin, args...); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("built kube-apiserver in %s", time.Since(start).Round(time.Second))
		return os.Rename(tmp, bin)
	})
	if err != nil {
		t.Fatalf("kube-apiserver %s is missing and could not be built from tests/tools/kube-apiserver "+
			"(needs the Go toolchain and the Go module proxy): %v", KubeVersion, err)
	}
	return bin
}

// kubeLDFlags sets the version that the binary reports on /version, which
// the Kubernetes build scripts take from git and a plain go build leaves
// at v0.0.0-master. The build date is that of the release, so that the
// flags do not change from build to build.
func kubeLDFlags() string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(KubeVersion, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	flags := []string{"-s", "-w"}
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", pkg+".gitVersion="+KubeVersion,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".buildDate=2026-07-22T18:07:38Z",
		)
	}
	return strings.Join(flags, " ")
}
