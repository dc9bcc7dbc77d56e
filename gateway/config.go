package gateway

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/sandboxd/sandboxd/gateway/piston"
	"github.com/sandboxd/sandboxd/gateway/web"
)

// Config is the gateway's configuration: the TOML file, with the command
// line's flags put over it. The zero value serves nothing.
type Config struct {
	// GoJudgeListen is the TCP address go-judge's REST API is served on
	// ("127.0.0.1:5050"); empty: not served.
	GoJudgeListen string `toml:"gojudge_listen"`
	// PistonListen is the TCP address Piston's v2 API is served on;
	// empty: not served.
	PistonListen string `toml:"piston_listen"`
	// WebListen is the TCP address of the playground page and its
	// WebSocket protocol; empty: not served.
	WebListen string `toml:"web_listen"`
	// Token, if set, is required on every route of every listener as
	// "Authorization: Bearer TOKEN". Without one, only loopback addresses
	// may be listened on.
	Token string `toml:"token"`
	// HostDirs are the directories a request may name host files in (a
	// go-judge "src"); none: no host file may be read.
	HostDirs []string `toml:"host_dirs"`
	// Piston is the [piston] table: Piston's execute limits (its own
	// configuration's names and units), each 0 or left out for Piston's
	// default.
	Piston piston.Config `toml:"piston"`
	// Web is the [web] table: the playground's origins, code size, time
	// limit and connection bounds.
	Web web.Config `toml:"web"`
}

// LoadConfig reads a TOML config file strictly: a key it does not know is
// an error that names it. "" is the empty config.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	if path == "" {
		return cfg, nil
	}
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return cfg, fmt.Errorf("config %s: unknown key(s): %s (known: gojudge_listen, piston_listen, web_listen, token, host_dirs, [piston] compile_timeout, run_timeout, compile_cpu_time, run_cpu_time, compile_memory_limit, run_memory_limit, output_max_size, [web] allowed_origins, max_code_bytes, time_limit_ms, memory_bytes, max_connections, queue_messages)", path, strings.Join(keys, ", "))
	}
	return cfg, nil
}

// Validate checks the config as a whole; its messages name the key.
func (c Config) Validate() error {
	if c.GoJudgeListen == "" && c.PistonListen == "" && c.WebListen == "" {
		return errors.New("no protocol to serve: give --gojudge ADDR, --piston ADDR or --web ADDR (gojudge_listen, piston_listen, web_listen)")
	}
	for _, l := range []struct{ key, addr string }{{"gojudge_listen", c.GoJudgeListen}, {"piston_listen", c.PistonListen}, {"web_listen", c.WebListen}} {
		if l.addr == "" {
			continue
		}
		loop, err := isLoopback(l.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", l.key, err)
		}
		if !loop && c.Token == "" {
			return fmt.Errorf("%s: %q is not a loopback address, and no token is set: set token (Bearer auth) to listen there", l.key, l.addr)
		}
	}
	if err := c.Piston.Validate(); err != nil {
		return fmt.Errorf("piston.%w", err)
	}
	if err := c.Web.Validate(); err != nil {
		return fmt.Errorf("web.%w", err)
	}
	for i, d := range c.HostDirs {
		if !filepath.IsAbs(d) || filepath.Clean(d) != d {
			return fmt.Errorf("host_dirs[%d]: %q must be an absolute, clean path", i, d)
		}
		if d == "/" {
			return fmt.Errorf("host_dirs[%d]: \"/\" would let requests read any file of the host", i)
		}
	}
	return nil
}

// isLoopback says whether every address addr may listen on is a loopback
// one: "localhost" or a loopback IP. An empty host (":5050") is every
// interface.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("%q: %w", addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}
