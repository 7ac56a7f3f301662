package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// input is one base and new file pair.
type input struct {
	Name, Base, New string
	Desc            string
}

// families are the record names of the pattern-like files.
var families = []string{
	"Trojan.Win32.Agent", "Trojan.Win32.Generic", "Worm.Win32.Autorun", "Adware.Win32.Toolbar",
	"Backdoor.Linux.Mirai", "PUA.Win32.Miner", "Ransom.Win32.Locky", "Exploit.PDF.CVE",
	"Downloader.JS.Nemucod", "Spyware.Android.Joker",
}

// patternFiles writes a pattern-like file of about size bytes and its next
// version: records of 40 to 90 bytes (length, sequence number, kind,
// flags, a family name with a variant, a 16 to 39 byte signature), of
// which 0.5% change in the new version, a third each deleted, modified
// (new signature and flags) and appended at the end.
func patternFiles(dir, name string, size int64, seed uint64) (input, error) {
	in := input{
		Name: name, Base: filepath.Join(dir, name+".base"), New: filepath.Join(dir, name+".new"),
		Desc: fmt.Sprintf("%d MiB pattern-like file, 0.5%% of its records deleted, modified or appended", size>>20),
	}
	bf, err := os.Create(in.Base)
	if err != nil {
		return in, err
	}
	defer bf.Close()
	nf, err := os.Create(in.New)
	if err != nil {
		return in, err
	}
	defer nf.Close()
	bw, nw := bufio.NewWriterSize(bf, 1<<20), bufio.NewWriterSize(nf, 1<<20)
	rng := rand.New(rand.NewPCG(seed, 0xde17a))
	edits := rand.New(rand.NewPCG(seed, 0xed175))
	var rec []byte
	var written int64
	seq, appended := 0, 0
	for written < size {
		rec = record(rng, rec[:0], seq)
		seq++
		written += int64(len(rec))
		bw.Write(rec)
		switch edits.IntN(600) {
		case 0: // deleted
		case 1: // modified: a new signature and other flags
			m := append([]byte(nil), rec...)
			m[7] ^= 0x5a
			sig := m[len(m)-16:]
			for i := range sig {
				sig[i] = byte(edits.Uint32())
			}
			nw.Write(m)
		case 2:
			appended++
			nw.Write(rec)
		default:
			nw.Write(rec)
		}
	}
	for i := range appended {
		rec = record(rng, rec[:0], seq+i)
		nw.Write(rec)
	}
	if err := bw.Flush(); err != nil {
		return in, err
	}
	if err := nw.Flush(); err != nil {
		return in, err
	}
	if err := bf.Close(); err != nil {
		return in, err
	}
	return in, nf.Close()
}

// record appends one record.
func record(rng *rand.Rand, b []byte, seq int) []byte {
	name := fmt.Sprintf("%s.%s", families[rng.IntN(len(families))], variant(rng))
	sigLen := 16 + rng.IntN(24)
	n := 2 + 4 + 1 + 1 + 1 + len(name) + sigLen
	b = binary.LittleEndian.AppendUint16(b, uint16(n))
	b = binary.LittleEndian.AppendUint32(b, uint32(seq))
	b = append(b, byte(rng.IntN(6)), byte(rng.IntN(256)), byte(len(name)))
	b = append(b, name...)
	for range sigLen {
		b = append(b, byte(rng.Uint32()))
	}
	return b
}

// variant is a short lower-case variant name.
func variant(rng *rand.Rand) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	k := 2 + rng.IntN(4)
	var s strings.Builder
	for range k {
		s.WriteByte(letters[rng.IntN(len(letters))])
	}
	return s.String()
}

// programFiles builds ./cmd/cascade twice, as two patch releases of a
// program: the new build has a constant of internal/fetch turned into a
// setting read from the environment (a few lines of code, through
// -overlay: the tree is left alone) and another version string (set with
// -ldflags -X).
// With strip, the builds have no symbol table and no DWARF (-s -w), as
// programs are often shipped; without, Go's default build, whose DWARF is
// compressed (a small change changes much of it).
func programFiles(dir string, strip bool) (input, error) {
	in := input{
		Name: "program", Base: filepath.Join(dir, "cascade.base"), New: filepath.Join(dir, "cascade.new"),
		Desc: "two builds of cmd/cascade with -ldflags '-s -w': a constant of internal/fetch turned into a setting read from the environment, and another version string",
	}
	flags := "-s -w "
	if !strip {
		in.Name = "program-debug"
		in.Desc = "the same two builds of cmd/cascade, default flags (symbol table and compressed DWARF)"
		flags = ""
	}
	const file, from, to = "internal/fetch/file.go", "const copyBufSize = 256 << 10", `var copyBufSize = copyBufFromEnv()

// copyBufFromEnv lets CASCADE_COPY_BUF_KIB set the buffer's size.
func copyBufFromEnv() int {
	n := 0
	for _, c := range os.Getenv("CASCADE_COPY_BUF_KIB") {
		if c < '0' || c > '9' || n > 1<<20 {
			return 256 << 10
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 {
		return 256 << 10
	}
	return n << 10
}`
	src, err := os.ReadFile(file)
	if err != nil {
		return in, fmt.Errorf("program input (run from the repository's root): %w", err)
	}
	if !strings.Contains(string(src), from) {
		return in, fmt.Errorf("program input: %s no longer has %q; pick another constant in bench/delta/inputs.go", file, from)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return in, err
	}
	changed := filepath.Join(dir, "file.go")
	if err := os.WriteFile(changed, []byte(strings.Replace(string(src), from, to, 1)), 0o644); err != nil {
		return in, err
	}
	label := filepath.Join(dir, "zz_label.go")
	labelSrc := "package main\n\nimport \"os\"\n\nvar benchLabel = \"dev\"\n\nfunc init() {\n\tif os.Getenv(\"CASCADE_BENCH_LABEL\") != \"\" {\n\t\tprintln(benchLabel)\n\t}\n}\n"
	if err := os.WriteFile(label, []byte(labelSrc), 0o644); err != nil {
		return in, err
	}
	labelAbs, err := filepath.Abs("cmd/cascade/zz_label.go")
	if err != nil {
		return in, err
	}
	for _, b := range []struct {
		out, version string
		replace      map[string]string
	}{
		{in.Base, "1.4.0", map[string]string{labelAbs: label}},
		{in.New, "1.4.1", map[string]string{labelAbs: label, abs: changed}},
	} {
		ov, err := json.Marshal(map[string]any{"Replace": b.replace})
		if err != nil {
			return in, err
		}
		ovFile := filepath.Join(dir, in.Name+"-"+b.version+".overlay.json")
		if err := os.WriteFile(ovFile, ov, 0o644); err != nil {
			return in, err
		}
		cmd := exec.Command("go", "build", "-trimpath", "-overlay", ovFile,
			"-ldflags", flags+"-X main.benchLabel="+b.version, "-o", b.out, "./cmd/cascade")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return in, fmt.Errorf("go build: %w\n%s", err, out)
		}
	}
	return in, nil
}
