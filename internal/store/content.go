package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

const policyCols = "version, document, author, created_at"

func scanPolicy(row scanner) (PolicyVersion, error) {
	var p PolicyVersion
	err := row.Scan(&p.Version, &p.Document, &p.Author, timeCol{&p.Created})
	return p, err
}

// PutPolicy implements Policies. Two concurrent writers (two server
// processes) computing the same next version collide on the primary key:
// a conditional write then fails with ErrConflict, an unconditional one
// retries with the new current version.
func (s *sqlStore) PutPolicy(ctx context.Context, doc, author string, ifVersion int64) (PolicyVersion, error) {
	const op = "put policy"
	if strings.TrimSpace(doc) == "" {
		return PolicyVersion{}, fmt.Errorf("%s: %w: empty document", op, ErrInvalid)
	}
	for attempt := 0; ; attempt++ {
		p, err := s.putPolicy(ctx, doc, author, ifVersion)
		if err == nil {
			return p, nil
		}
		if ifVersion != AnyVersion || classify(err) != dbUnique || attempt >= 10 {
			return PolicyVersion{}, fail(op, err)
		}
	}
}

func (s *sqlStore) putPolicy(ctx context.Context, doc, author string, ifVersion int64) (PolicyVersion, error) {
	p := PolicyVersion{Document: doc, Author: author, Created: s.now()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var cur int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM policies`).Scan(&cur); err != nil {
			return err
		}
		if ifVersion != AnyVersion && cur != ifVersion {
			return fmt.Errorf("%w: current version is %d, not %d", ErrConflict, cur, ifVersion)
		}
		p.Version = cur + 1
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO policies (`+policyCols+`) VALUES (?, ?, ?, ?)`),
			p.Version, p.Document, p.Author, s.t(p.Created))
		return err
	})
	return p, err
}

// CurrentPolicy implements Policies.
func (s *sqlStore) CurrentPolicy(ctx context.Context) (PolicyVersion, error) {
	p, err := scanPolicy(s.r.QueryRowContext(ctx, `SELECT `+policyCols+` FROM policies ORDER BY version DESC LIMIT 1`))
	if err != nil {
		return PolicyVersion{}, fail("get current policy", err)
	}
	return p, nil
}

// Policy implements Policies.
func (s *sqlStore) Policy(ctx context.Context, version int64) (PolicyVersion, error) {
	p, err := scanPolicy(s.r.QueryRowContext(ctx, s.q(`SELECT `+policyCols+` FROM policies WHERE version = ?`), version))
	if err != nil {
		return PolicyVersion{}, fail(fmt.Sprintf("get policy version %d", version), err)
	}
	return p, nil
}

// ListPolicies implements Policies.
func (s *sqlStore) ListPolicies(ctx context.Context, limit int) ([]PolicyVersion, error) {
	const op = "list policies"
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+policyCols+` FROM policies ORDER BY version DESC LIMIT ?`), sqlLimit(limit))
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, scanPolicy)
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// sqlLimit turns "<= 0: no limit" into a LIMIT argument.
func sqlLimit(n int) int64 {
	if n <= 0 {
		return 1<<63 - 1
	}
	return int64(n)
}

const componentCols = "name, latest_version, synced_at, deployed_version, deployed_at, held"

func scanComponent(row scanner) (ComponentState, error) {
	var c ComponentState
	err := row.Scan(&c.Name, &c.Latest, timeCol{&c.Synced}, strCol{&c.Deployed}, timeCol{&c.DeployedAt}, &c.Held)
	return c, err
}

// RecordComponentSync implements Components.
func (s *sqlStore) RecordComponentSync(ctx context.Context, name, version string) (ComponentState, error) {
	op := fmt.Sprintf("record sync of component %s %s", name, version)
	if !validName(name) || !validName(version) {
		return ComponentState{}, fmt.Errorf("%s: %w: name and version are required", op, ErrInvalid)
	}
	now := s.t(s.now())
	var c ComponentState
	err := s.write(ctx, func(q querier) (err error) {
		c, err = scanComponent(q.QueryRowContext(ctx, s.q(`INSERT INTO components (`+componentCols+`)
		VALUES (?, ?, ?, ?, ?, FALSE)
		ON CONFLICT (name) DO UPDATE SET
			latest_version = excluded.latest_version,
			synced_at = excluded.synced_at,
			deployed_version = CASE WHEN components.held THEN components.deployed_version ELSE excluded.latest_version END,
			deployed_at = CASE WHEN components.held OR components.deployed_version = excluded.latest_version
				THEN components.deployed_at ELSE excluded.synced_at END
		RETURNING `+componentCols), name, version, now, version, now))
		return err
	})
	if err != nil {
		return ComponentState{}, fail(op, err)
	}
	return c, nil
}

// HoldComponent implements Components.
func (s *sqlStore) HoldComponent(ctx context.Context, name string, hold bool) (ComponentState, error) {
	op := "hold component " + name
	if !hold {
		op = "release component " + name
	}
	var c ComponentState
	err := s.write(ctx, func(q querier) (err error) {
		c, err = scanComponent(q.QueryRowContext(ctx, s.q(`UPDATE components SET
			held = ?,
			deployed_at = CASE WHEN ? OR deployed_version = latest_version THEN deployed_at ELSE ? END,
			deployed_version = CASE WHEN ? THEN deployed_version ELSE latest_version END
		WHERE name = ? RETURNING `+componentCols), hold, hold, s.t(s.now()), hold, name))
		return err
	})
	if err != nil {
		return ComponentState{}, fail(op, err)
	}
	return c, nil
}

// DeployComponent implements Components.
func (s *sqlStore) DeployComponent(ctx context.Context, name, version string) (ComponentState, error) {
	op := fmt.Sprintf("deploy component %s %s", name, version)
	if !validName(version) {
		return ComponentState{}, fmt.Errorf("%s: %w: version is required", op, ErrInvalid)
	}
	var c ComponentState
	err := s.write(ctx, func(q querier) (err error) {
		c, err = scanComponent(q.QueryRowContext(ctx, s.q(`UPDATE components SET
			deployed_version = ?, deployed_at = ?
		WHERE name = ? RETURNING `+componentCols), version, s.t(s.now()), name))
		return err
	})
	if err != nil {
		return ComponentState{}, fail(op, err)
	}
	return c, nil
}

// ComponentState implements Components.
func (s *sqlStore) ComponentState(ctx context.Context, name string) (ComponentState, error) {
	c, err := scanComponent(s.r.QueryRowContext(ctx, s.q(`SELECT `+componentCols+` FROM components WHERE name = ?`), name))
	if err != nil {
		return ComponentState{}, fail("get component "+name, err)
	}
	return c, nil
}

// ListComponents implements Components.
func (s *sqlStore) ListComponents(ctx context.Context) ([]ComponentState, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+componentCols+` FROM components ORDER BY name`)
	if err == nil {
		var out []ComponentState
		if out, err = collect(rows, scanComponent); err == nil {
			return out, nil
		}
	}
	return nil, fail("list components", err)
}
