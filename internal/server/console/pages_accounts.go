package console

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/cascade-update/cascade/internal/store"
)

// The accounts page (/accounts, admins only) and the password page
// (/password, every account for its own password).

func (c *Console) accounts(w http.ResponseWriter, r *http.Request) {
	as, err := c.st.ListAccounts(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "accounts", map[string]any{"Accounts": as, "Done": r.URL.Query().Get("done")})
}

// changeAccount disables, enables or changes the role of an account
// (accounts.go: the rules and the audit entry).
func (c *Console) changeAccount(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	name, action, actor := r.PathValue("name"), r.PathValue("action"), Actor(accountOf(r))
	var err error
	switch action {
	case "disable", "enable":
		_, err = SetAccountDisabled(r.Context(), c.st, actor, name, action == "disable")
	case "role":
		role := store.AccountRole(r.PostFormValue("role"))
		if role != store.AccountAdmin && role != store.AccountViewer {
			c.errorPage(w, r, http.StatusBadRequest, "Choose the role admin or viewer.")
			return
		}
		_, err = SetAccountRole(r.Context(), c.st, actor, name, role)
	default:
		c.errorPage(w, r, http.StatusNotFound, "No such page.")
		return
	}
	if err != nil {
		c.accountFail(w, r, "Account "+name+" was not changed ("+action+")", err)
		return
	}
	http.Redirect(w, r, "/accounts?"+url.Values{"done": {action + " " + name}}.Encode(), http.StatusSeeOther)
}

// accountFail shows why an account change was refused.
func (c *Console) accountFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrSelf), errors.Is(err, ErrWrongPassword):
		code = http.StatusForbidden
	case errors.Is(err, store.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, store.ErrInvalid):
		code = http.StatusBadRequest
	default:
		c.log.Error("console: account change", "err", err)
	}
	c.errorPage(w, r, code, what+": "+err.Error())
}

func (c *Console) passwordPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "password", map[string]any{"Done": r.URL.Query().Get("done") != ""})
}

// changePassword changes the signed-in account's own password: the
// current one is required; its other sessions end, this one stays.
func (c *Console) changePassword(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	p, _ := r.Context().Value(principalKey{}).(principal)
	old, pw, again := r.PostFormValue("old"), r.PostFormValue("new"), r.PostFormValue("again")
	if pw != again {
		c.render(w, r, http.StatusBadRequest, "password", map[string]any{"Error": "The two new passwords differ."})
		return
	}
	if err := ChangePassword(r.Context(), c.st, p.account.Name, old, pw, p.session); err != nil {
		code := http.StatusBadRequest
		if !errors.Is(err, ErrWrongPassword) && !errors.Is(err, ErrShortPassword) {
			c.accountFail(w, r, "The password was not changed", err)
			return
		}
		c.render(w, r, code, "password", map[string]any{"Error": err.Error()})
		return
	}
	http.Redirect(w, r, "/password?done=1", http.StatusSeeOther)
}
