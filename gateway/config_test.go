package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/sandboxd/sandboxd/api/client"
	"github.com/sandboxd/sandboxd/gateway/web"
)

func TestLoadConfigStrict(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("gojudge_listen = \"127.0.0.1:5050\"\ntoken = \"t\"\nhost_dirs = [\"/srv/judge\"]\n"), 0o644)
	cfg, err := LoadConfig(good)
	if err != nil || cfg.GoJudgeListen != "127.0.0.1:5050" || cfg.Token != "t" || len(cfg.HostDirs) != 1 {
		t.Fatalf("LoadConfig: %+v, %v", cfg, err)
	}
	webCfg := filepath.Join(dir, "web.toml")
	os.WriteFile(webCfg, []byte("web_listen = \"127.0.0.1:8080\"\n[web]\nallowed_origins = [\"*.example.edu\"]\ntime_limit_ms = 5000\n"), 0o644)
	if cfg, err := LoadConfig(webCfg); err != nil || cfg.WebListen != "127.0.0.1:8080" || cfg.Web.TimeLimitMS != 5000 || len(cfg.Web.AllowedOrigins) != 1 {
		t.Errorf("the [web] table: %+v, %v", cfg, err)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("gojudge_listen = \"127.0.0.1:5050\"\ntokn = \"t\"\n[x]\ny = 1\n"), 0o644)
	if _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), "tokn") || !strings.Contains(err.Error(), "x.y") {
		t.Errorf("unknown keys: %v, want both named", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // "" for valid
	}{
		{Config{GoJudgeListen: "127.0.0.1:5050"}, ""},
		{Config{GoJudgeListen: "localhost:5050"}, ""},
		{Config{GoJudgeListen: "[::1]:5050"}, ""},
		{Config{GoJudgeListen: "0.0.0.0:5050"}, `gojudge_listen: "0.0.0.0:5050" is not a loopback address`},
		{Config{GoJudgeListen: ":5050"}, `":5050" is not a loopback address`},
		{Config{PistonListen: "10.0.0.1:2000"}, `piston_listen: "10.0.0.1:2000" is not a loopback address`},
		{Config{GoJudgeListen: "0.0.0.0:5050", Token: "t"}, ""},
		{Config{GoJudgeListen: "5050"}, "gojudge_listen"},
		{Config{}, "no protocol to serve"},
		{Config{WebListen: "127.0.0.1:8080"}, ""},
		{Config{WebListen: "0.0.0.0:8080"}, `web_listen: "0.0.0.0:8080" is not a loopback address`},
		{Config{WebListen: "127.0.0.1:8080", Web: web.Config{MaxConnections: -1}}, "web.max_connections: -1 is negative"},
		{Config{GoJudgeListen: "127.0.0.1:5050", HostDirs: []string{"data"}}, "host_dirs[0]"},
		{Config{GoJudgeListen: "127.0.0.1:5050", HostDirs: []string{"/"}}, "host_dirs[0]"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestPistonConfig: the [piston] table is read into Piston's limits, and
// a limit no execute could honour is refused naming its key.
func TestPistonConfig(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "piston.toml")
	os.WriteFile(f, []byte("piston_listen = \"127.0.0.1:2000\"\n[piston]\nrun_timeout = 5000\nrun_memory_limit = 268435456\n"), 0o644)
	cfg, err := LoadConfig(f)
	if err != nil || cfg.Piston.RunTimeout != 5000 || cfg.Piston.RunMemoryLimit != 256<<20 {
		t.Fatalf("LoadConfig: %+v, %v", cfg, err)
	}
	os.WriteFile(f, []byte("piston_listen = \"127.0.0.1:2000\"\n[piston]\nrun_timout = 5000\n"), 0o644)
	if _, err := LoadConfig(f); err == nil || !strings.Contains(err.Error(), "piston.run_timout") {
		t.Errorf("a misspelt piston key: %v", err)
	}
	cfg.Piston.RunTimeout = -1
	if err := cfg.Validate(); err == nil || err.Error() != "piston.run_timeout: -1 is negative" {
		t.Errorf("negative run_timeout: %v", err)
	}
	cfg.Piston.RunTimeout, cfg.Piston.CompileMemoryLimit = 0, -2
	if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), "piston.compile_memory_limit: -2") {
		t.Errorf("compile_memory_limit -2: %v", err)
	}
	cfg.Piston.CompileMemoryLimit = -1
	if _, err := New(cfg, client.New("/nonexistent"), "test", logrus.New()); err != nil {
		t.Errorf("New with piston: %v", err)
	}
}

// TestAuthAndMetrics: every route of a gateway with a token, /metrics
// included, is 401 without it; each request is counted under its route.
func TestAuthAndMetrics(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	g, err := New(Config{GoJudgeListen: "127.0.0.1:0", Token: "s3cret"}, client.New("/nonexistent"), "test", log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler("gojudge"))
	defer srv.Close()
	get := func(path, auth string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Bearer s3cre", "Bearer s3cretX", "Basic s3cret", "bearer s3cret"} {
		for _, path := range []string{"/version", "/config", "/file", "/metrics", "/nope"} {
			if status, body := get(path, auth); status != 401 || body != "" {
				t.Errorf("%q %s: %d %q, want 401 and no body", auth, path, status, body)
			}
		}
	}
	if status, body := get("/version", "Bearer s3cret"); status != 200 || !strings.Contains(body, `"copyOutOptional":true`) {
		t.Errorf("right token: %d %s", status, body)
	}
	if status, _ := get("/nope", "Bearer s3cret"); status != 404 {
		t.Errorf("unknown route: %d, want 404", status)
	}
	_, body := get("/metrics", "Bearer s3cret")
	for _, want := range []string{
		`sandboxd_gateway_requests_total{protocol="gojudge",route="GET /version",status="200"} 1`,
		`sandboxd_gateway_requests_total{protocol="gojudge",route="unmatched",status="401"} 35`,
		`sandboxd_gateway_requests_total{protocol="gojudge",route="unmatched",status="404"} 1`,
		`sandboxd_gateway_request_seconds_count{protocol="gojudge",route="GET /version"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics: no %s", want)
		}
	}
}
