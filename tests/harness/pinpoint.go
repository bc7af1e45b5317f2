package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// PinpointNodeAgentVersion is the version of the npm package
// pinpoint-node-agent that PinpointNodeAgent installs. Weft's pinpoint
// receiver is tested against what this version really sends.
const PinpointNodeAgentVersion = "0.8.7"

// PinpointNodeAgent makes sure Node.js, npm and the npm package
// pinpoint-node-agent (PinpointNodeAgentVersion) are installed and returns
// the node_modules directory that holds the agent, for use as NODE_PATH.
//
// The package is installed once into
// CacheDir()/pinpoint-node-agent/VERSION/. npm installs into a temporary
// directory beside it that is renamed into place only when the install is
// complete, so an interrupted install is never mistaken for a finished one.
func PinpointNodeAgent(t testing.TB) string {
	t.Helper()
	ensureDebian(t, []string{"node", "npm"}, "nodejs", "npm")
	dir := filepath.Join(CacheDir(), "pinpoint-node-agent", PinpointNodeAgentVersion)
	modules := filepath.Join(dir, "node_modules")
	// The directory only ever appears complete (see above), so a look without
	// the lock is safe and spares parallel tests the wait for it.
	if pinpointNodeAgentInstalled(modules) == nil {
		return modules
	}
	err := withInstallLock("pinpoint-node-agent", func() error {
		if pinpointNodeAgentInstalled(modules) == nil {
			return nil
		}
		return installPinpointNodeAgent(dir)
	})
	if err != nil {
		t.Fatalf("install the npm package pinpoint-node-agent@%s (npm install --prefix %s pinpoint-node-agent@%s): %v",
			PinpointNodeAgentVersion, dir, PinpointNodeAgentVersion, err)
	}
	return modules
}

// pinpointNodeAgentInstalled reports, as an error, why modules does not hold
// the wanted version of the agent.
func pinpointNodeAgentInstalled(modules string) error {
	b, err := os.ReadFile(filepath.Join(modules, "pinpoint-node-agent", "package.json"))
	if err != nil {
		return err
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		return err
	}
	if pkg.Version != PinpointNodeAgentVersion {
		return fmt.Errorf("found pinpoint-node-agent %s, want %s", pkg.Version, PinpointNodeAgentVersion)
	}
	return nil
}

// installPinpointNodeAgent installs the agent with npm into dir. The caller
// holds the install lock.
func installPinpointNodeAgent(dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	// Whatever an earlier, interrupted install left behind is garbage: no
	// one else installs while we hold the lock.
	stale, _ := filepath.Glob(filepath.Join(parent, ".install-*"))
	for _, s := range stale {
		os.RemoveAll(s)
	}
	tmp, err := os.MkdirTemp(parent, ".install-"+PinpointNodeAgentVersion+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // does nothing once tmp has been renamed
	// A package.json makes tmp the npm project root, so npm neither looks
	// for one in the directories above nor warns about its absence.
	pkg := `{"name": "weft-pinpoint-node-agent", "private": true}` + "\n"
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), []byte(pkg), 0o644); err != nil {
		return err
	}
	// The agent is plain JavaScript; the only install script in its
	// dependency tree (protobufjs's) just prints version advice.
	out, err := run(10*time.Minute, nil, "npm", "install", "--prefix", tmp,
		"--no-audit", "--no-fund", "--ignore-scripts", "--save-exact",
		"pinpoint-node-agent@"+PinpointNodeAgentVersion)
	if err != nil {
		return fmt.Errorf("npm install: %w\n%s", err, out)
	}
	if err := pinpointNodeAgentInstalled(filepath.Join(tmp, "node_modules")); err != nil {
		return fmt.Errorf("npm install finished but: %w\n%s", err, out)
	}
	// MkdirTemp made tmp private; the installed agent is for every user.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// PinpointCollector is where a Pinpoint agent sends its data: the three gRPC
// ports of a Pinpoint collector, or of Weft's pinpoint receiver, on
// 127.0.0.1.
type PinpointCollector struct {
	AgentPort int // Agent, Metadata and ProfilerCommandService (Pinpoint's 9991)
	StatPort  int // Stat (9992)
	SpanPort  int // Span (9993)
}

// NodeService is a Node.js HTTP service instrumented by the real Pinpoint
// Node agent. Fill in the first group of fields and pass it to
// StartNodeService, which returns a copy with the second group filled in.
type NodeService struct {
	// Name names the service's script and log file (Name.js, Name.log). It
	// is also the agent id and application name unless those are set.
	Name string
	// AgentID and ApplicationName become PINPOINT_AGENT_ID and
	// PINPOINT_APPLICATION_NAME, and so the agentid and applicationname
	// gRPC headers. Both must match [a-zA-Z0-9._-]{1,24}.
	AgentID         string
	ApplicationName string
	// Collector receives the agent's data. All three ports are required:
	// the agent's defaults (9991-9993) could reach a stranger's collector.
	Collector PinpointCollector
	// Env holds more KEY=value variables for the program, such as
	// BACKEND_URL for NodeServiceJS, or PINPOINT_* settings that override
	// the harness's.
	Env []string
	// LogLevel is PINPOINT_LOG_LEVEL (loglevel names: TRACE, DEBUG, INFO,
	// WARN, ERROR, SILENT); empty means INFO.
	LogLevel string

	// Port is the HTTP port the service listens on, URL its base URL
	// (http://127.0.0.1:Port) and Process the running node.
	Port    int
	URL     string
	Process *Process
}

// NodeServiceJS is the JavaScript HTTP service that StartNodeService runs.
// Its routes:
//
//   - /hello answers "hello from APPLICATION_NAME" by itself;
//   - /call fetches $BACKEND_URL with an HTTP GET and answers
//     "APPLICATION_NAME -> BODY", with status 502 when the backend failed
//     (500 when BACKEND_URL is not set), so two services make a front ->
//     back distributed trace;
//   - /fail answers 500 by itself;
//   - /broken fetches $BROKEN_URL, where nobody listens, and answers 502;
//   - /fanout?n=N fetches $BACKEND_URL N times at once (all calls start
//     before any ends) and answers when all have;
//   - /ready answers "ready" and is excluded from tracing (see
//     StartNodeService), so that waiting for the service adds no spans.
//
// The agent must be required before anything else: it instruments modules
// such as http as they are loaded.
const NodeServiceJS = `require('pinpoint-node-agent')

const http = require('http')

const name = process.env.PINPOINT_APPLICATION_NAME
const port = Number(process.env.PORT)
const backend = process.env.BACKEND_URL

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/plain' })
  res.end(body + '\n')
}

// http.request, not http.get: the agent wraps only http.request, and
// Node's http.get calls its own copy of it, which the agent cannot see.
function fetch(cb, url) {
  const req = http.request(url, (r) => {
    let body = ''
    r.setEncoding('utf8')
    r.on('data', (c) => { body += c })
    r.on('end', () => cb(r.statusCode === 200 ? null : new Error('status ' + r.statusCode), body.trim()))
  })
  req.on('error', (err) => cb(err))
  req.end()
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost')
  switch (url.pathname) {
    case '/ready':
      return reply(res, 200, 'ready')
    case '/hello':
      return reply(res, 200, 'hello from ' + name)
    case '/fail':
      return reply(res, 500, name + ' failed on purpose')
    case '/call':
      if (!backend) {
        return reply(res, 500, 'BACKEND_URL is not set')
      }
      return fetch((err, body) => reply(res, err ? 502 : 200, name + ' -> ' + (err ? err.message : body)), backend)
    case '/broken':
      return fetch((err) => reply(res, 502, name + ' -> ' + (err ? err.message : 'no error?')), process.env.BROKEN_URL)
    case '/fanout': {
      let left = Number(url.searchParams.get('n')) || 1
      let failed = null
      for (let i = left; i > 0; i--) {
        fetch((err) => {
          failed = failed || err
          if (--left === 0) reply(res, failed ? 502 : 200, name + ' fanned out')
        }, backend)
      }
      return
    }
    default:
      return reply(res, 404, 'no route ' + req.url)
  }
})

server.listen(port, '127.0.0.1', () => console.log(name + ' listening on 127.0.0.1:' + port))
`

// pinpointID is what the agent, and the Pinpoint collector, accept as an
// agent id or application name. The agent disables itself, with only a
// warning in its log, when an id does not match.
var pinpointID = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,24}$`)

// StartNodeService runs NodeServiceJS with node, the Pinpoint Node agent on
// NODE_PATH and the agent configured through its
// PINPOINT_* environment variables to send to s.Collector on 127.0.0.1 and
// to trace every request. The program gets a free port in $PORT; the call
// returns once the service answers HTTP there. The service is stopped when
// the test ends, and its log is shown if the test failed.
func StartNodeService(t testing.TB, s NodeService) *NodeService {
	t.Helper()
	if s.Name == "" {
		t.Fatalf("StartNodeService: NodeService.Name is empty")
	}
	if s.AgentID == "" {
		s.AgentID = s.Name
	}
	if s.ApplicationName == "" {
		s.ApplicationName = s.Name
	}
	for _, id := range []string{s.AgentID, s.ApplicationName} {
		if !pinpointID.MatchString(id) {
			t.Fatalf("StartNodeService %s: Pinpoint id %q does not match %s", s.Name, id, pinpointID)
		}
	}
	c := s.Collector
	if c.AgentPort == 0 || c.StatPort == 0 || c.SpanPort == 0 {
		t.Fatalf("StartNodeService %s: collector ports not all set: %+v", s.Name, c)
	}
	if s.LogLevel == "" {
		s.LogLevel = "INFO"
	}
	modules := PinpointNodeAgent(t)

	dir := t.TempDir()
	script := filepath.Join(dir, s.Name+".js")
	if err := os.WriteFile(script, []byte(NodeServiceJS), 0o644); err != nil {
		t.Fatalf("StartNodeService %s: %v", s.Name, err)
	}
	s.Port = FreePort(t)
	s.URL = "http://127.0.0.1:" + strconv.Itoa(s.Port)
	env := []string{
		"NODE_PATH=" + modules,
		"PORT=" + strconv.Itoa(s.Port),
		"PINPOINT_ENABLE=true",
		"PINPOINT_AGENT_ID=" + s.AgentID,
		"PINPOINT_APPLICATION_NAME=" + s.ApplicationName,
		"PINPOINT_COLLECTOR_IP=127.0.0.1",
		"PINPOINT_COLLECTOR_TCP_PORT=" + strconv.Itoa(c.AgentPort),
		"PINPOINT_COLLECTOR_STAT_PORT=" + strconv.Itoa(c.StatPort),
		"PINPOINT_COLLECTOR_SPAN_PORT=" + strconv.Itoa(c.SpanPort),
		// Trace every request, not one in ten (the agent's default).
		"PINPOINT_SAMPLING=true",
		"PINPOINT_SAMPLING_RATE=1",
		"PINPOINT_LOG_LEVEL=" + s.LogLevel,
		// Without this the agent drops its gRPC errors instead of logging them.
		"PINPOINT_LOG_ERROR=true",
		// The readiness probe below must not show up as traces.
		"PINPOINT_TRACE_EXCLUSION_URL_PATTERN=/ready",
	}
	env = append(env, s.Env...)
	s.Process = StartProcess(t, dir, s.Name, env, "node", script)

	// Any HTTP answer means the server listens, and so the agent, which the
	// script loads first, has started. A node that exits ends the wait early.
	client := &http.Client{Timeout: 2 * time.Second}
	var exited bool
	err := poll(30*time.Second, func() error {
		if exited, _ = s.Process.Exited(); exited {
			return nil
		}
		resp, err := client.Get(s.URL + "/ready")
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	})
	if exited {
		_, err := s.Process.Exited()
		t.Fatalf("node service %s exited before answering HTTP: %v\n%s", s.Name, err, tail(s.Process.LogPath, 40))
	}
	if err != nil {
		t.Fatalf("node service %s not answering at %s after 30s: %v", s.Name, s.URL, err)
	}
	return &s
}

// Get sends GET s.URL+path and returns the body, failing the test unless
// the answer is 200 OK.
func (s *NodeService) Get(t testing.TB, path string) string {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", s.Name, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: %v", s.Name, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s%s: %s: %s", s.Name, path, resp.Status, body)
	}
	return string(body)
}
