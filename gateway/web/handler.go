package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/sirupsen/logrus"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

//go:embed static
var static embed.FS

// handler serves the page and the protocol from one daemon.
type handler struct {
	c     *client.Client
	cfg   Config
	log   logrus.FieldLogger
	conns atomic.Int64 // WebSocket connections open now

	// The languages an execute chooses from, read from the daemon at most
	// once a languagesTTL.
	mu        sync.Mutex
	langs     []api.LanguageInfo
	langsTime time.Time
}

const languagesTTL = time.Second

// NewHandler serves the playground and its WebSocket protocol over the
// daemon that c talks to. cfg must have passed Validate.
func NewHandler(c *client.Client, cfg Config, log logrus.FieldLogger) http.Handler {
	h := &handler{c: c, cfg: cfg.withDefaults(), log: log}
	mux := http.NewServeMux()
	files, _ := fs.Sub(static, "static")
	page := http.FileServerFS(files)
	mux.Handle("GET /{$}", withPageHeaders(tokenCookie(page)))
	mux.Handle("GET /playground.css", withPageHeaders(page))
	mux.Handle("GET /playground.js", withPageHeaders(page))
	mux.HandleFunc("GET /languages", h.languagesRoute)
	mux.HandleFunc("GET /health", h.health)
	mux.HandleFunc("GET /ws/python", func(w http.ResponseWriter, r *http.Request) { h.serveWS(w, r, "python") })
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) { h.serveWS(w, r, "python") })
	return mux
}

// withPageHeaders keeps the page to its own files: no script, style or
// connection anywhere else, no framing.
func withPageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// tokenCookie: a page opened as /?token=T (the gateway has checked T)
// keeps the token in a cookie, so that its own requests, the WebSocket's
// handshake included, carry it.
func tokenCookie(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := r.URL.Query().Get("token"); t != "" {
			http.SetCookie(w, &http.Cookie{Name: "sandboxd_token", Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		}
		next.ServeHTTP(w, r)
	})
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := h.c.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "message": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "connections": h.conns.Load(), "max_connections": h.cfg.MaxConnections})
}

// Language is one entry of GET /languages.
type Language struct {
	Language string   `json:"language"`
	Version  string   `json:"version"`
	Aliases  []string `json:"aliases,omitempty"`
}

func (h *handler) languagesRoute(w http.ResponseWriter, r *http.Request) {
	langs, err := h.languages(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"message": err.Error()})
		return
	}
	out := []Language{}
	for _, l := range langs {
		out = append(out, Language{Language: l.Language, Version: l.Version, Aliases: l.Aliases})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Language < out[j].Language })
	writeJSON(w, http.StatusOK, out)
}

// languages are the daemon's available language profiles, reused for up
// to languagesTTL.
func (h *handler) languages(ctx context.Context) ([]api.LanguageInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.langsTime) < languagesTTL {
		return h.langs, nil
	}
	info, err := h.c.Info(ctx)
	if err != nil {
		return nil, err
	}
	var avail []api.LanguageInfo
	for _, l := range info.Languages {
		if l.Available {
			avail = append(avail, l)
		}
	}
	h.langs, h.langsTime = avail, time.Now()
	return avail, nil
}

// lookup finds a language by name or alias.
func (h *handler) lookup(ctx context.Context, name string) (*api.LanguageInfo, []string, error) {
	langs, err := h.languages(ctx)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for i := range langs {
		l := &langs[i]
		names = append(names, l.Language)
		if l.Language == name {
			return l, nil, nil
		}
		for _, a := range l.Aliases {
			if a == name {
				return l, nil, nil
			}
		}
	}
	sort.Strings(names)
	return nil, names, nil
}

// serveWS upgrades to a WebSocket (the Origin checked against the page's
// own and allowed_origins) and runs its session.
func (h *handler) serveWS(w http.ResponseWriter, r *http.Request, language string) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.cfg.AllowedOrigins})
	if err != nil {
		return // Accept answered (403 for a foreign Origin)
	}
	if n := h.conns.Add(1); n > int64(h.cfg.MaxConnections) {
		h.conns.Add(-1)
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		b, _ := json.Marshal(Message{Type: TypeError, Message: "too many connections: the playground takes " +
			strconv.Itoa(h.cfg.MaxConnections) + " at once; try again in a moment"})
		conn.Write(ctx, websocket.MessageText, b)
		conn.Close(websocket.StatusTryAgainLater, "too many connections")
		return
	}
	defer h.conns.Add(-1)
	s := newSession(h, conn, language)
	s.serve(r.Context())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

var errSlowClient = errors.New("the client does not read its messages")
