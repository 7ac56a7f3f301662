// Package console is the administrator's web console that `cascade server
// run` serves at / on its HTTPS listener: sign-in with console accounts
// (argon2id passwords, two roles: admin and viewer), server-side sessions,
// and server-rendered pages (html/template, assets embedded) over the same
// store and the same server functions as the admin API (docs/console.md).
//
// Every answer carries a Content-Security-Policy that allows only the
// server's own scripts and styles, X-Frame-Options: DENY and a
// Referrer-Policy; every state-changing request passes net/http's
// CrossOriginProtection and needs a SameSite=Strict session cookie; a
// viewer's state-changing request is refused whatever form it comes from.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/ratelimit"
	"github.com/cascade-update/cascade/internal/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// CookieName is the session cookie. The __Host- prefix makes browsers
// accept it only when Secure, for path / and without a Domain.
const CookieName = "__Host-cascade_session"

// Defaults of Options.
const (
	DefaultIdle     = 30 * time.Minute
	DefaultAbsolute = 12 * time.Hour
	DefaultNotSeen  = 7 * 24 * time.Hour
)

// Options configure a Console.
type Options struct {
	Store   store.Store
	Backend Backend
	Logger  *slog.Logger
	Now     func() time.Time
	// Idle and Absolute expire sessions (defaults DefaultIdle,
	// DefaultAbsolute).
	Idle, Absolute time.Duration
	// NotSeen is after how long without contact an endpoint counts as
	// "not seen" (default DefaultNotSeen).
	NotSeen time.Duration
	// AccountAttempts and AddressAttempts limit sign-in attempts per
	// account name and per client address (defaults: 5 and 20 a minute,
	// with the same burst). Zero Rate in either disables nothing: use the
	// defaults.
	AccountAttempts, AddressAttempts ratelimit.Options
}

// Console serves the web console.
type Console struct {
	st      store.Store
	be      Backend
	log     *slog.Logger
	now     func() time.Time
	idle    time.Duration
	abs     time.Duration
	notSeen time.Duration
	perName *ratelimit.Limiter
	perAddr *ratelimit.Limiter
	tmpl    map[string]*template.Template
	handler http.Handler
}

// New returns a console over o.Store and o.Backend.
func New(o Options) (*Console, error) {
	c := &Console{st: o.Store, be: o.Backend, log: o.Logger, now: o.Now, idle: o.Idle, abs: o.Absolute, notSeen: o.NotSeen}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.idle <= 0 {
		c.idle = DefaultIdle
	}
	if c.abs <= 0 {
		c.abs = DefaultAbsolute
	}
	if c.notSeen <= 0 {
		c.notSeen = DefaultNotSeen
	}
	limit := func(o ratelimit.Options, n int) *ratelimit.Limiter {
		if o.Rate <= 0 {
			o = ratelimit.Options{Rate: float64(n), Per: time.Minute, Burst: n}
		}
		if o.Now == nil {
			o.Now = c.now
		}
		return ratelimit.New(o)
	}
	c.perName = limit(o.AccountAttempts, 5)
	c.perAddr = limit(o.AddressAttempts, 20)
	var err error
	if c.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	c.handler = c.routes()
	return c, nil
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

// contentSecurityPolicy allows the server's own scripts, styles and images
// only: no inline script or style, no framing, forms posted only here.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(assetFiles, "assets")
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /signin", c.signInPage)
	mux.HandleFunc("POST /signin", c.signIn)
	mux.HandleFunc("POST /signout", c.signOut)
	mux.Handle("GET /{$}", c.viewer(c.dashboard))
	mux.Handle("GET /endpoints", c.viewer(c.endpoints))
	mux.Handle("GET /endpoints/{id}", c.viewer(c.endpointPage))
	mux.Handle("GET /endpoints/{id}/{action}", c.admin(c.confirmEndpoint))
	mux.Handle("POST /endpoints/{id}/{action}", c.admin(c.changeEndpoint))
	mux.Handle("GET /accounts", c.admin(c.accounts))
	mux.Handle("POST /accounts/{name}/{action}", c.admin(c.changeAccount))
	mux.Handle("GET /password", c.viewer(c.passwordPage))
	mux.Handle("POST /password", c.viewer(c.changePassword))
	mux.Handle("GET /audit", c.viewer(c.audit))
	mux.Handle("GET /audit/{seq}", c.viewer(c.auditEntry))
	mux.Handle("GET /enrollment", c.viewer(c.enrollment))
	mux.Handle("GET /agents", c.viewer(c.agents))
	mux.Handle("GET /content", c.viewer(c.content))
	mux.Handle("GET /content/components/{name}/{action}", c.admin(c.confirmContent))
	mux.Handle("POST /content/components/{name}/{action}", c.admin(c.changeContent))
	mux.Handle("GET /content/programs/{program}/{action}", c.admin(c.confirmProgram))
	mux.Handle("POST /content/programs/{program}/{action}", c.admin(c.changeProgram))
	mux.Handle("POST /enrollment/tokens", c.admin(c.createToken))
	mux.Handle("GET /sources", c.viewer(c.sourcesPage))
	mux.Handle("POST /sources", c.admin(c.sourcesPost))
	mux.Handle("GET /sources/export", c.viewer(c.sourcesExport))
	mux.Handle("POST /sources/export", c.admin(c.sourcesExport))
	mux.Handle("POST /sources/notify", c.admin(c.sourcesNotify))
	mux.Handle("POST /enrollment/tokens/{id}/revoke", c.admin(c.revokeToken))
	// Preview and what-if change nothing: a viewer may post them too.
	mux.Handle("GET /sources/preview", c.viewer(c.preview))
	mux.Handle("POST /sources/preview", c.viewer(c.preview))
	mux.Handle("GET /sources/whatif", c.viewer(c.whatIf))
	mux.Handle("POST /sources/whatif", c.viewer(c.whatIf))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, http.StatusNotFound, "No such page.")
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, http.StatusForbidden, "Refused: this request came from another site.")
	}))
	return securityHeaders(cop.Handler(mux))
}

// securityHeaders sets the headers every console answer carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/assets/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// principal is the signed-in account of a request.
type principal struct {
	account store.Account
	session store.Hash
}

type principalKey struct{}

func accountOf(r *http.Request) store.Account {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p.account
}

// Actor names the account of r as the audit log does ("account:NAME").
func Actor(a store.Account) string { return "account:" + a.Name }

// viewer wraps h with session authentication: without a valid session the
// browser goes to the sign-in page.
func (c *Console) viewer(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := c.session(w, r)
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			c.errorPage(w, r, http.StatusUnauthorized, "Your session has ended: sign in again.")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// admin is viewer for accounts with the admin role; a viewer is refused
// (403), whatever the request.
func (c *Console) admin(h http.HandlerFunc) http.Handler {
	return c.viewer(func(w http.ResponseWriter, r *http.Request) {
		if accountOf(r).Role != store.AccountAdmin {
			c.errorPage(w, r, http.StatusForbidden, "Refused: your account may look but not change anything (role viewer).")
			return
		}
		h(w, r)
	})
}

// session returns the session of r's cookie, if valid.
func (c *Console) session(w http.ResponseWriter, r *http.Request) (principal, bool) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return principal{}, false
	}
	h := store.HashSecret(ck.Value)
	_, a, err := c.st.TouchSession(r.Context(), h, c.idle, c.abs)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExpired) && !errors.Is(err, store.ErrRevoked) {
			c.log.Error("console: session check failed", "err", err)
		}
		clearCookie(w)
		return principal{}, false
	}
	return principal{account: a, session: h}, true
}

func setCookie(w http.ResponseWriter, secret string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: secret, Path: "/", MaxAge: int(maxAge.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// signInFailed is the one message of every refused sign-in: it does not
// say whether the name or the password was wrong.
const signInFailed = "Sign-in failed: the account name or the password is wrong."

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.session(w, r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "signin", map[string]any{})
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	name := strings.TrimSpace(r.PostFormValue("name"))
	password := r.PostFormValue("password")
	data := map[string]any{"Name": name}
	addr := clientAddr(r)
	okAddr, _ := c.perAddr.Allow(addr)
	okName, _ := c.perName.Allow(strings.ToLower(name))
	if !okAddr || !okName {
		c.log.Warn("console: sign-in rate limited", "name", name, "addr", addr)
		data["Error"] = "Too many sign-in attempts: wait a minute and try again."
		c.render(w, r, http.StatusTooManyRequests, "signin", data)
		return
	}
	a, err := c.st.AccountByName(r.Context(), name)
	hash := a.PasswordHash
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			c.errorPage(w, r, http.StatusInternalServerError, "The server could not check the sign-in; see its log.")
			c.log.Error("console: sign-in", "err", err)
			return
		}
		hash = dummyHash
	}
	ok, verr := VerifyPassword(hash, password)
	if err != nil || verr != nil || !ok || !a.Disabled.IsZero() {
		if verr != nil {
			c.log.Error("console: sign-in", "account", name, "err", verr)
		}
		c.log.Info("console: sign-in refused", "name", name, "addr", addr)
		data["Error"] = signInFailed
		c.render(w, r, http.StatusUnauthorized, "signin", data)
		return
	}
	secret, h, err := store.NewSecret("cs_")
	if err == nil {
		_, err = c.st.CreateSession(r.Context(), store.Session{Hash: h, AccountID: a.ID})
	}
	if err != nil {
		c.log.Error("console: create session", "err", err)
		c.errorPage(w, r, http.StatusInternalServerError, "The server could not start the session; see its log.")
		return
	}
	c.log.Info("console: signed in", "account", a.Name, "role", a.Role, "addr", addr)
	setCookie(w, secret, c.abs)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(CookieName); err == nil && ck.Value != "" {
		if err := c.st.DeleteSession(r.Context(), store.HashSecret(ck.Value)); err != nil {
			c.log.Error("console: sign out", "err", err)
		}
	}
	clearCookie(w)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// clientAddr is the client's IP address (the TCP peer: the console is
// served directly, not behind a proxy).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	c.render(w, r, code, "error", map[string]any{"Message": msg, "Code": code})
}

// render executes the page template name with data, adding the signed-in
// account as .Account.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, data map[string]any) {
	t, ok := c.tmpl[name]
	if !ok {
		panic(fmt.Sprintf("console: no template %q", name))
	}
	if a := accountOf(r); a.ID != "" {
		data["Account"] = a
		data["CanChange"] = a.Role == store.AccountAdmin
	}
	data["Path"] = r.URL.Path
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "page", data); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(buf.String()))
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"join": strings.Join,
}

func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, name := range append([]string{"signin", "error", "dashboard", "endpoints", "audit", "enrollment", "agents", "content", "confirm", "sources",
		"endpoint", "endpoint_confirm", "accounts", "password"}, previewTemplates...) {
		// templates/_*.html define parts that several pages use.
		t, err := template.Must(base.Clone()).ParseFS(templateFiles, "templates/"+name+".html", "templates/_*.html")
		if err != nil {
			return nil, fmt.Errorf("console templates: %w", err)
		}
		out[name] = t
	}
	return out, nil
}
