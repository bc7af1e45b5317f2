package harness

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildErr  error
)

// Weftcol returns the path of bin/weftcol, running `make build` once per test
// process first so that tests always run the current sources (make rebuilds
// only when something changed).
func Weftcol(t testing.TB) string {
	t.Helper()
	root := RepoRoot()
	buildOnce.Do(func() {
		buildErr = withInstallLock("weftcol-build", func() error {
			cmd := exec.Command("make", "-s", "build")
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("make build: %w\n%s", err, out)
			}
			return nil
		})
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(root, "bin", "weftcol")
}

// Collector is a running weftcol.
type Collector struct {
	*Process
	// Dir is the collector's working directory; ConfigPath its config.
	Dir        string
	ConfigPath string
	// DataDir is WEFT_DATA_DIR: where the file exporters of distro/config.yaml
	// write.
	DataDir string
	// Endpoints the collector was given through the environment
	// (WEFT_OTLP_GRPC_ENDPOINT and the others in distro/config.yaml).
	OTLPGRPC, OTLPHTTP, Health, PProf, ZPages string
	TelemetryPort                             int
	// Pinpoint is where distro/config.yaml's pinpoint receiver listens.
	Pinpoint PinpointCollector
	// FalconRPC, FalconHTTP and FalconAgent are distro/config.yaml's
	// open_falcon listeners (transfer JSON-RPC, /api/push, /v1/push).
	FalconRPC, FalconHTTP, FalconAgent string
}

// StartCollector runs weftcol with config (YAML text), on free loopback
// ports handed to it through the WEFT_* environment variables that
// distro/config.yaml reads (a test config may use them too), plus env. It
// waits until the health_check extension at WEFT_HEALTH_ENDPOINT answers,
// so the config must enable health_check there. The collector is stopped
// when the test ends.
func StartCollector(t testing.TB, config string, env ...string) *Collector {
	t.Helper()
	bin := Weftcol(t)
	dir := t.TempDir()
	c := &Collector{
		Dir:           dir,
		ConfigPath:    filepath.Join(dir, "config.yaml"),
		DataDir:       filepath.Join(dir, "data"),
		OTLPGRPC:      fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		OTLPHTTP:      fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		Health:        fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		PProf:         fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		ZPages:        fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		TelemetryPort: FreePort(t),
		Pinpoint:      PinpointCollector{AgentPort: FreePort(t), StatPort: FreePort(t), SpanPort: FreePort(t)},
		FalconRPC:     fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		FalconHTTP:    fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		FalconAgent:   fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
	}
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.ConfigPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	env = append([]string{
		"WEFT_OTLP_GRPC_ENDPOINT=" + c.OTLPGRPC,
		"WEFT_OTLP_HTTP_ENDPOINT=" + c.OTLPHTTP,
		"WEFT_HEALTH_ENDPOINT=" + c.Health,
		"WEFT_PPROF_ENDPOINT=" + c.PProf,
		"WEFT_ZPAGES_ENDPOINT=" + c.ZPages,
		"WEFT_TELEMETRY_HOST=127.0.0.1",
		fmt.Sprintf("WEFT_TELEMETRY_PORT=%d", c.TelemetryPort),
		"WEFT_DATA_DIR=" + c.DataDir,
		fmt.Sprintf("WEFT_PINPOINT_AGENT_ENDPOINT=127.0.0.1:%d", c.Pinpoint.AgentPort),
		fmt.Sprintf("WEFT_PINPOINT_STAT_ENDPOINT=127.0.0.1:%d", c.Pinpoint.StatPort),
		fmt.Sprintf("WEFT_PINPOINT_SPAN_ENDPOINT=127.0.0.1:%d", c.Pinpoint.SpanPort),
		// trace_completion holds spans this long after the last related one:
		// tests need not wait the production default.
		"WEFT_TRACE_COMPLETION_WAIT=1s",
		"WEFT_FALCON_RPC_ENDPOINT=" + c.FalconRPC,
		"WEFT_FALCON_HTTP_ENDPOINT=" + c.FalconHTTP,
		"WEFT_FALCON_AGENT_ENDPOINT=" + c.FalconAgent,
	}, env...)
	c.Process = StartProcess(t, dir, "weftcol", env, bin, "--config", c.ConfigPath)
	WaitFor(t, 60*time.Second, "weftcol health_check", func() error {
		if exited, err := c.Exited(); exited {
			return fmt.Errorf("weftcol exited (%v):\n%s", err, tail(c.LogPath, 40))
		}
		return c.Healthy()
	})
	return c
}

// Healthy asks the health_check extension whether the collector is up.
func (c *Collector) Healthy() error {
	resp, err := http.Get("http://" + c.Health + "/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health_check: %s", resp.Status)
	}
	return nil
}

// DistroConfig returns distro/config.yaml, Weft's default pipeline.
func DistroConfig(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "distro", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
