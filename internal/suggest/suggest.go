// Package suggest finds the word a person probably meant: the nearest of
// a list of known names (subcommands, configuration fields) to a mistyped
// one, for "did you mean" hints.
package suggest

import "strings"

// Nearest returns the candidate nearest to typed, if it is near enough to
// be a typing mistake: at most a third of its letters differ (at least
// one may), or typed is the beginning of it. Letter case is ignored. ""
// if no candidate is near enough; of equally near ones, the first.
func Nearest(typed string, candidates []string) string {
	t := strings.ToLower(typed)
	best, bestDist := "", -1
	for _, c := range candidates {
		l := strings.ToLower(c)
		if l == t {
			return c
		}
		d := Distance(t, l)
		if t != "" && strings.HasPrefix(l, t) {
			d = min(d, 1)
		}
		if d <= max(1, len([]rune(c))/3) && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// Distance is the optimal string alignment distance between a and b:
// each insertion, deletion, substitution and swap of adjacent letters
// counts one ("sttaus" is 1 from "status").
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
