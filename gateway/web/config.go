package web

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Config is the [web] table of the gateway's config file. Each field left
// out (0, empty) takes the default named beside it.
type Config struct {
	// AllowedOrigins are the origins, besides the page's own, whose pages
	// may open the WebSocket: host patterns ("example.edu",
	// "*.example.edu") or scheme://host patterns, as path.Match reads
	// them. Empty: only the page's own origin (the Origin's host equals
	// the request's Host).
	AllowedOrigins []string `toml:"allowed_origins"`
	// MaxCodeBytes bounds an execute's code; default 65536.
	MaxCodeBytes int64 `toml:"max_code_bytes"`
	// TimeLimitMS is each run step's wall-time and CPU-time limit; default
	// 10000. A compile step gets the profile's defaults.
	TimeLimitMS int64 `toml:"time_limit_ms"`
	// MemoryBytes is each run step's memory limit; default the profile's.
	MemoryBytes int64 `toml:"memory_bytes"`
	// MaxConnections bounds the WebSocket connections open at once;
	// default 64. One past it gets an error message and is closed.
	MaxConnections int `toml:"max_connections"`
	// QueueMessages bounds the messages waiting to be written to one
	// connection; default 1024. A client that lets it fill is dropped.
	QueueMessages int `toml:"queue_messages"`
}

// Validate names the first key no connection could honour.
func (c Config) Validate() error {
	for _, f := range []struct {
		key string
		v   int64
	}{{"max_code_bytes", c.MaxCodeBytes}, {"time_limit_ms", c.TimeLimitMS}, {"memory_bytes", c.MemoryBytes},
		{"max_connections", int64(c.MaxConnections)}, {"queue_messages", int64(c.QueueMessages)}} {
		if f.v < 0 {
			return fmt.Errorf("%s: %d is negative", f.key, f.v)
		}
	}
	for i, o := range c.AllowedOrigins {
		if o == "" {
			return fmt.Errorf("allowed_origins[%d]: empty", i)
		}
		if _, err := path.Match(o, ""); err != nil {
			return fmt.Errorf("allowed_origins[%d]: %q: %w", i, o, err)
		}
		if strings.HasSuffix(o, "/") {
			return errors.New("allowed_origins: an origin has no path: " + o)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxCodeBytes == 0 {
		c.MaxCodeBytes = 64 << 10
	}
	if c.TimeLimitMS == 0 {
		c.TimeLimitMS = 10000
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 64
	}
	if c.QueueMessages == 0 {
		c.QueueMessages = 1024
	}
	return c
}
