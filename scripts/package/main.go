// Command package builds cascade's Linux packages: a .deb and an .rpm for
// each of linux/amd64 and linux/arm64, with nfpm as a library.
//
//	go run ./scripts/package                 # into dist/
//	go run ./scripts/package -out DIR -version 1.2.0 -arch amd64
//
// Each package holds /usr/bin/cascade (built with CGO_ENABLED=0 and the
// version, commit and commit date linked in, so `cascade version` names
// them), the systemd units of deploy/ (with ExecStart pointing at
// /usr/bin/cascade), /etc/cascade and /var/lib/cascade; its postinstall
// script creates the `cascade` system user and group. The version is
// -version, else the tag at HEAD (v1.2.0 -> 1.2.0), else
// 0.0.0~gitYYYYMMDDhhmmss.COMMIT; file times are the commit's, so a build
// of the same commit gives the same packages.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

const module = "github.com/cascade-update/cascade"

// postinstall creates the system user the server unit runs as and hands
// it /var/lib/cascade. It runs on install and upgrade, so each step checks
// first.
const postinstall = `#!/bin/sh
set -e
if ! getent group cascade >/dev/null; then
	groupadd --system cascade
fi
if ! getent passwd cascade >/dev/null; then
	useradd --system --gid cascade --home-dir /var/lib/cascade --no-create-home \
		--shell /usr/sbin/nologin --comment "cascade update distribution" cascade
fi
chown cascade:cascade /var/lib/cascade
chmod 0750 /var/lib/cascade
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
`

// preremove stops the services before their binary goes away (not on
// upgrade: the new package's files replace the old ones in place).
const preremove = `#!/bin/sh
set -e
case "$1" in
	remove|purge|0)
		if [ -d /run/systemd/system ]; then
			systemctl stop cascade-server.service cascade-endpoint.service 2>/dev/null || true
		fi
		;;
esac
`

func main() {
	out := flag.String("out", "dist", "directory for the packages")
	version := flag.String("version", "", "package version (default: the tag at HEAD, else 0.0.0~git<commit time>.<commit>)")
	archs := flag.String("arch", "amd64,arm64", "comma-separated GOARCH values to package for linux")
	formats := flag.String("format", "deb,rpm", "comma-separated package formats")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "package: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if err := run(context.Background(), *out, *version, strings.Split(*archs, ","), strings.Split(*formats, ",")); err != nil {
		fmt.Fprintf(os.Stderr, "package: %v\n", err)
		os.Exit(1)
	}
}

// source is what the packages are built from.
type source struct {
	root    string    // the module's directory
	version string    // package version
	commit  string    // full commit id ("" outside git)
	date    time.Time // commit time (now outside git)
}

func run(ctx context.Context, out, version string, archs, formats []string) error {
	src, err := describe(ctx, version)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	work, err := os.MkdirTemp("", "cascade-package-")
	if err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	defer os.RemoveAll(work)
	units, err := systemdUnits(src.root, work)
	if err != nil {
		return err
	}
	for _, arch := range archs {
		bin := filepath.Join(work, arch, "cascade")
		if err := build(ctx, src, arch, bin); err != nil {
			return err
		}
		for _, format := range formats {
			path, err := pack(src, arch, format, bin, units, out)
			if err != nil {
				return fmt.Errorf("%s %s package: %w", arch, format, err)
			}
			fmt.Println(path)
		}
	}
	return nil
}

// describe finds the module root, the commit and the version.
func describe(ctx context.Context, version string) (source, error) {
	root, err := gitOutput(ctx, "", "rev-parse", "--show-toplevel")
	if err != nil {
		wd, werr := os.Getwd()
		if werr != nil {
			return source{}, werr
		}
		// Not a git checkout (an unpacked source archive): the module is
		// where go run was started, and the time is now.
		if _, serr := os.Stat(filepath.Join(wd, "go.mod")); serr != nil {
			return source{}, errors.New("run from the module's directory: go run ./scripts/package")
		}
		if version == "" {
			return source{}, errors.New("not a git checkout: give -version")
		}
		return source{root: wd, version: strings.TrimPrefix(version, "v"), date: time.Now().UTC().Truncate(time.Second)}, nil
	}
	src := source{root: root}
	if src.commit, err = gitOutput(ctx, root, "rev-parse", "HEAD"); err != nil {
		return source{}, err
	}
	ct, err := gitOutput(ctx, root, "log", "-1", "--format=%ct")
	if err != nil {
		return source{}, err
	}
	var secs int64
	if _, err := fmt.Sscan(ct, &secs); err != nil {
		return source{}, fmt.Errorf("commit time %q: %w", ct, err)
	}
	src.date = time.Unix(secs, 0).UTC()
	switch {
	case version != "":
		src.version = strings.TrimPrefix(version, "v")
	default:
		if tag, err := gitOutput(ctx, root, "describe", "--tags", "--exact-match", "--match", "v[0-9]*"); err == nil {
			src.version = strings.TrimPrefix(tag, "v")
		} else {
			src.version = "0.0.0~git" + src.date.Format("20060102150405") + "." + src.commit[:12]
		}
	}
	return src, nil
}

func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(b)), nil
}

// build cross-compiles cascade for linux/arch into bin.
func build(ctx context.Context, src source, arch, bin string) error {
	ldflags := fmt.Sprintf("-s -w -X %[1]s/internal/buildinfo.version=%[2]s -X %[1]s/internal/buildinfo.date=%[3]s",
		module, "v"+src.version, src.date.Format(time.RFC3339))
	if src.commit != "" {
		ldflags += fmt.Sprintf(" -X %s/internal/buildinfo.commit=%s", module, src.commit)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", bin, "./cmd/cascade")
	cmd.Dir = src.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build cascade for linux/%s: %w", arch, err)
	}
	return nil
}

// systemdUnits copies deploy/*.service into work with ExecStart pointing
// at the packaged binary, and returns their paths.
func systemdUnits(root, work string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(root, "deploy", "*.service"))
	if err != nil || len(names) == 0 {
		return nil, fmt.Errorf("no systemd units in %s/deploy (%v)", root, err)
	}
	var units []string
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read unit: %w", err)
		}
		if !bytes.Contains(b, []byte("ExecStart=/usr/local/bin/cascade ")) {
			return nil, fmt.Errorf("%s: no ExecStart=/usr/local/bin/cascade line to point at /usr/bin/cascade", name)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/cascade "), []byte("/usr/bin/cascade "))
		dst := filepath.Join(work, "units", filepath.Base(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return nil, fmt.Errorf("write unit: %w", err)
		}
		units = append(units, dst)
	}
	return units, nil
}

// pack writes one package into out and returns its path.
func pack(src source, arch, format, bin string, units []string, out string) (string, error) {
	scripts := filepath.Join(filepath.Dir(bin), "scripts")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		return "", err
	}
	post, pre := filepath.Join(scripts, "postinstall.sh"), filepath.Join(scripts, "preremove.sh")
	if err := os.WriteFile(post, []byte(postinstall), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(pre, []byte(preremove), 0o755); err != nil {
		return "", err
	}
	contents := files.Contents{
		{Source: bin, Destination: "/usr/bin/cascade", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Destination: "/etc/cascade", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Destination: "/var/lib/cascade", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o750}},
	}
	for _, u := range units {
		// Units under /usr/lib are the package's; an administrator
		// overrides them in /etc/systemd/system (systemctl edit).
		contents = append(contents, &files.Content{Source: u, Destination: "/usr/lib/systemd/system/" + filepath.Base(u),
			FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
	for _, doc := range []string{"README.md", "docs/server.md", "docs/endpoint.md", "docs/deploy.md"} {
		contents = append(contents, &files.Content{Source: filepath.Join(src.root, doc),
			Destination: "/usr/share/doc/cascade/" + filepath.Base(doc), FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "cascade",
		Arch:          arch,
		Platform:      "linux",
		Version:       src.version,
		VersionSchema: "none",
		Release:       "1",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "cascade maintainers <cascade@localhost>",
		Description:   "Signed update distribution through a management server and relaying update agents",
		Homepage:      "https://" + module,
		License:       "proprietary",
		MTime:         src.date,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts:  nfpm.Scripts{PostInstall: post, PreRemove: pre},
		},
	})
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	pkgr, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	path := filepath.Join(out, pkgr.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	info.Target = path
	if err := pkgr.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}
