package version

import (
	"slices"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "1", 0},
		{"1", "2", -1},
		{"2", "10", -1},
		{"17.735.00", "17.735.0", 0},
		{"17.735.00", "17.736.00", -1},
		{"17.735.00", "17.99.00", 1},
		{"1.2.3", "1.2.3-hotfix4", -1},
		{"1.2.3-hotfix4", "1.2.3-hotfix10", -1},
		{"1.2.3-hotfix4", "1.2.4", -1},
		{"1.2.3.1", "1.2.3-hotfix4", 1}, // digits are newer than letters
		{"2.0", "2.0-beta", -1},         // no pre-release notion
		{"1.2-a", "1.2.A", 0},           // separators and case do not count
		{"1a", "1b", -1},
		{"1.10", "1.9", 1},
		{"000123", "123", 0},
		{"99999999999999999999999", "99999999999999999999998", 1}, // beyond uint64
	}
	for _, tt := range tests {
		t.Run(tt.a+"_vs_"+tt.b, func(t *testing.T) {
			got, err := Compare(tt.a, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			back, _ := Compare(tt.b, tt.a)
			if back != -tt.want {
				t.Errorf("Compare(%q, %q) = %d, want %d (antisymmetry)", tt.b, tt.a, back, -tt.want)
			}
		})
	}
}

func TestSortIsTotal(t *testing.T) {
	in := []string{"1.10", "1.2.3-hotfix4", "1.2", "1.2.3", "1.9", "0.1", "1.2.3.1", "1.2.3-hotfix10"}
	want := []string{"0.1", "1.2", "1.2.3", "1.2.3-hotfix4", "1.2.3-hotfix10", "1.2.3.1", "1.9", "1.10"}
	vs := make([]Version, len(in))
	for i, s := range in {
		vs[i] = MustParse(s)
	}
	slices.SortFunc(vs, Version.Compare)
	var got []string
	for _, v := range vs {
		got = append(got, v.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("sorted = %v, want %v", got, want)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "empty"},
		{strings.Repeat("1", MaxLen+1), "longer than"},
		{".1", "start and end"},
		{"1.", "start and end"},
		{"1..2", "two separators"},
		{"1.-2", "two separators"},
		{"1/2", "not allowed"},
		{"1 2", "not allowed"},
		{"..", "start and end"},
		{"1.2é", "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseKeepsString(t *testing.T) {
	for _, s := range []string{"17.735.00", "1.2.3-hotfix4", "A_b+C"} {
		if got := MustParse(s).String(); got != s {
			t.Errorf("String() = %q, want %q", got, s)
		}
	}
}

func FuzzCompare(f *testing.F) {
	f.Add("1.2.3", "1.2.3-hotfix4")
	f.Add("17.735.00", "17.735.0")
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := Parse(a)
		vb, errB := Parse(b)
		if errA != nil || errB != nil {
			return
		}
		if va.Compare(vb) != -vb.Compare(va) {
			t.Errorf("Compare not antisymmetric for %q, %q", a, b)
		}
		if va.Compare(va) != 0 {
			t.Errorf("Compare(%q, itself) != 0", a)
		}
	})
}
