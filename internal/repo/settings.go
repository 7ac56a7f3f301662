package repo

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
)

// Kind says which repository a directory holds: it names the published
// subdirectory and fixes the categories accepted.
type Kind string

// The two kinds of repository (ARCHITECTURE.md, "The source tree").
const (
	// Vendor is the vendor repository, published by the origin.
	Vendor Kind = "vendor"
	// Site is the site repository, signed by the management server.
	Site Kind = "site"
)

// Categories returns the categories a repository of kind k accepts, or nil
// for an unknown kind.
func (k Kind) Categories() []string {
	switch k {
	case Vendor:
		return []string{"components", "programs"}
	case Site:
		return []string{"domain_settings", "programs"}
	}
	return nil
}

// Valid reports whether k is Vendor or Site.
func (k Kind) Valid() bool { return k.Categories() != nil }

// Duration is a time.Duration written in JSON as a Go duration string
// ("168h").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Periods holds one duration per kind of role. Bins use Targets.
type Periods struct {
	Root      Duration `json:"root"`
	Targets   Duration `json:"targets"`
	Snapshot  Duration `json:"snapshot"`
	Timestamp Duration `json:"timestamp"`
}

const day = 24 * time.Hour

// Defaults, used for every zero field of Settings.
var (
	// DefaultExpiry: how long each role's metadata is valid once signed.
	DefaultExpiry = Periods{
		Root:      Duration(365 * day),
		Targets:   Duration(90 * day),
		Snapshot:  Duration(7 * day),
		Timestamp: Duration(1 * day),
	}
	// DefaultMargin: how long before expiry Refresh re-signs a role and
	// Status warns about it. Refresh re-signs the timestamp on every call.
	DefaultMargin = Periods{
		Root:      Duration(30 * day),
		Targets:   Duration(14 * day),
		Snapshot:  Duration(2 * day),
		Timestamp: Duration(6 * time.Hour),
	}
)

const (
	// DefaultBins is the number of hash bins. At 100,000 targets, 1024 bins
	// give bins of about 100 targets (30 KB at most) and a 47 KB snapshot,
	// which minimises what a client fetches for one lookup (measured by
	// BenchmarkHashBins: 71 KB cold, against 103 KB with 256 bins and
	// 191 KB with 4096).
	DefaultBins = 1024
	// MaxBins is the largest number of bins accepted.
	MaxBins = 1 << 16
	// DefaultKeep is how many versions of each item are kept.
	DefaultKeep = 14
	// DefaultDeltas is how many previous versions of each file a publish
	// makes a delta from (Settings.Deltas).
	DefaultDeltas = 14
	// MaxDeltas is the largest Settings.Deltas accepted.
	MaxDeltas = 64
	// DefaultDeltaMaxRatio is the largest delta kept, as a fraction of
	// the file it rebuilds (Settings.DeltaMaxRatio).
	DefaultDeltaMaxRatio = 0.5
	// DefaultGCGenerations is how many newer timestamps must exist before
	// an unreferenced file is deleted.
	DefaultGCGenerations = 3
	// DefaultGCGrace is how long an unreferenced file stays on disk.
	DefaultGCGrace = Duration(time.Hour)
	settingsFile   = "repo.json"
)

// Settings are a repository's parameters, chosen at Init and stored in
// DIR/repo.json. Zero fields take the defaults above.
type Settings struct {
	// Kind is Vendor or Site. Required.
	Kind Kind `json:"kind"`
	// Bins is the number of hash-bin delegated roles: a power of two from
	// 2 to MaxBins. It cannot change after Init.
	Bins int `json:"bins"`
	// Keep is how many versions of each item are kept (Item.Keep
	// overrides it for one publish).
	Keep int `json:"keep"`
	// Expiry is how long each role's metadata is valid once signed.
	Expiry Periods `json:"expiry"`
	// Margin is how long before expiry Refresh re-signs a role and Status
	// warns about it.
	Margin Periods `json:"margin"`
	// GCGenerations and GCGrace delay the deletion of files that no current
	// metadata references: both must have passed. Negative means zero.
	GCGenerations int      `json:"gc_generations"`
	GCGrace       Duration `json:"gc_grace"`
	// Deltas is how many previous versions of each file a publish makes
	// a delta from (docs/deltas.md): nil means DefaultDeltas, 0 turns
	// deltas off, at most MaxDeltas. Only kept versions can be bases.
	Deltas *int `json:"deltas,omitempty"`
	// DeltaMaxRatio: a delta is published only if it is smaller than
	// this fraction of the file it rebuilds; 0 means
	// DefaultDeltaMaxRatio, at most 1.
	DeltaMaxRatio float64 `json:"delta_max_ratio,omitempty"`
}

// DeltasFrom returns how many previous versions a publish makes deltas
// from (Deltas with its default).
func (s Settings) DeltasFrom() int {
	if s.Deltas == nil {
		return DefaultDeltas
	}
	return *s.Deltas
}

func fillPeriods(p *Periods, def Periods) {
	for _, f := range []struct{ v, d *Duration }{
		{&p.Root, &def.Root}, {&p.Targets, &def.Targets},
		{&p.Snapshot, &def.Snapshot}, {&p.Timestamp, &def.Timestamp},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
}

// withDefaults returns s with every zero field set to its default.
func (s Settings) withDefaults() Settings {
	if s.Bins == 0 {
		s.Bins = DefaultBins
	}
	if s.Keep == 0 {
		s.Keep = DefaultKeep
	}
	fillPeriods(&s.Expiry, DefaultExpiry)
	fillPeriods(&s.Margin, DefaultMargin)
	if s.GCGenerations == 0 {
		s.GCGenerations = DefaultGCGenerations
	}
	if s.GCGenerations < 0 {
		s.GCGenerations = 0
	}
	if s.GCGrace == 0 {
		s.GCGrace = DefaultGCGrace
	}
	if s.Deltas == nil {
		k := DefaultDeltas
		s.Deltas = &k
	}
	if s.DeltaMaxRatio == 0 {
		s.DeltaMaxRatio = DefaultDeltaMaxRatio
	}
	if s.GCGrace < 0 {
		s.GCGrace = 0
	}
	return s
}

// ErrInvalidSettings is wrapped by every error about a Settings value.
var ErrInvalidSettings = errors.New("invalid settings")

// validate checks settings after withDefaults.
func (s Settings) validate() error {
	if err := s.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSettings, err)
	}
	return nil
}

func (s Settings) check() error {
	if !s.Kind.Valid() {
		return fmt.Errorf("kind %q is neither %q nor %q", s.Kind, Vendor, Site)
	}
	if s.Bins < 2 || s.Bins > MaxBins || bits.OnesCount(uint(s.Bins)) != 1 {
		return fmt.Errorf("bins %d is not a power of two from 2 to %d", s.Bins, MaxBins)
	}
	if s.Keep < 1 {
		return fmt.Errorf("keep %d is less than 1", s.Keep)
	}
	if k := s.DeltasFrom(); k < 0 || k > MaxDeltas {
		return fmt.Errorf("deltas %d is not between 0 (off) and %d", k, MaxDeltas)
	}
	if !(s.DeltaMaxRatio > 0 && s.DeltaMaxRatio <= 1) {
		return fmt.Errorf("delta_max_ratio %v is not above 0 and at most 1", s.DeltaMaxRatio)
	}
	exp := []Duration{s.Expiry.Root, s.Expiry.Targets, s.Expiry.Snapshot, s.Expiry.Timestamp}
	mar := []Duration{s.Margin.Root, s.Margin.Targets, s.Margin.Snapshot, s.Margin.Timestamp}
	names := []string{"root", "targets", "snapshot", "timestamp"}
	for i := range exp {
		if exp[i] < Duration(time.Minute) {
			return fmt.Errorf("%s expiry %v is shorter than a minute", names[i], time.Duration(exp[i]))
		}
		if mar[i] < 0 || mar[i] >= exp[i] {
			return fmt.Errorf("%s margin %v is not between 0 and its expiry %v",
				names[i], time.Duration(mar[i]), time.Duration(exp[i]))
		}
	}
	return nil
}

// binBits returns the succinct-delegation bit length for s.Bins.
func (s Settings) binBits() int { return bits.TrailingZeros(uint(s.Bins)) }

// allowsCategory reports whether the repository accepts category c.
func (s Settings) allowsCategory(c string) bool { return slices.Contains(s.Kind.Categories(), c) }

// ErrNotRepository is returned by Open for a directory without
// repository settings.
var ErrNotRepository = errors.New("not a repository")

func loadSettings(dir string) (Settings, error) {
	b, err := os.ReadFile(filepath.Join(dir, settingsFile))
	if errors.Is(err, os.ErrNotExist) {
		return Settings{}, fmt.Errorf("%s: %w (no %s)", dir, ErrNotRepository, settingsFile)
	}
	if err != nil {
		return Settings{}, fmt.Errorf("read settings: %w", err)
	}
	var s Settings
	if err := json.Unmarshal(b, &s); err != nil {
		return Settings{}, fmt.Errorf("decode settings %s: %w", settingsFile, err)
	}
	s = s.withDefaults()
	if err := s.validate(); err != nil {
		return Settings{}, fmt.Errorf("settings %s: %w", settingsFile, err)
	}
	return s, nil
}

func saveSettings(dir string, s Settings) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode settings: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, settingsFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	return nil
}
