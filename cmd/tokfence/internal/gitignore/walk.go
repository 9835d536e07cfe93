package gitignore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Walk calls fn for every regular file below dir that git would not
// ignore, in lexical order, with its path (dir joined with the file's
// path below it). It never enters .git, follows no symbolic link (git
// keeps a link, not what it points at, and a link may loop) and skips
// what is neither a file nor a directory (a FIFO would block the read).
//
// When dir lies in a git work tree (a parent holds .git), the .gitignore
// files from the work tree's top down to dir and .git/info/exclude apply
// as well as those below dir; otherwise dir is the top. dir itself is
// walked even when a pattern ignores it: it was asked for by name.
//
// An error reading a directory or an ignore file is passed to fn with its
// path; when fn returns nil the walk goes on without it. An error fn
// returns stops the walk and is returned.
func Walk(dir string, fn func(path string, err error) error) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fn(dir, err)
	}
	top, rel := workTree(abs)
	w := walker{fn: fn}
	if gd := commonDir(top); gd != "" {
		if err := w.load(filepath.Join(gd, "info", "exclude"), ""); err != nil {
			return err
		}
	}
	// The .gitignore of each directory from the top down to dir's parent;
	// dir's own, and those below, as the walk enters them.
	base := ""
	for _, elem := range strings.Split(rel, "/") {
		if elem == "" {
			break
		}
		if err := w.load(filepath.Join(top, filepath.FromSlash(base), ".gitignore"), base); err != nil {
			return err
		}
		base += elem + "/"
	}
	return w.dir(dir, strings.TrimSuffix(base, "/"))
}

// workTree returns the top of the git work tree holding abs (the nearest
// directory at or above it with a .git entry), or abs itself if there is
// none, and abs's slash-separated path below that top ("" at the top).
func workTree(abs string) (top, rel string) {
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			r, err := filepath.Rel(d, abs)
			if err != nil || r == "." {
				r = ""
			}
			return d, filepath.ToSlash(r)
		}
		if filepath.Dir(d) == d {
			return abs, ""
		}
	}
}

// commonDir returns the git directory of the work tree at top that holds
// info/exclude, or "" if top has none: top/.git, or for a linked work
// tree (a .git file saying "gitdir: ...") the main repository's, which
// its commondir file names.
func commonDir(top string) string {
	gd := filepath.Join(top, ".git")
	fi, err := os.Lstat(gd)
	switch {
	case err != nil:
		return ""
	case !fi.IsDir():
		b, err := os.ReadFile(gd)
		v, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
		if err != nil || !ok {
			return ""
		}
		if gd = v; !filepath.IsAbs(gd) {
			gd = filepath.Join(top, gd)
		}
	}
	if b, err := os.ReadFile(filepath.Join(gd, "commondir")); err == nil {
		c := strings.TrimSpace(string(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gd, c)
		}
		return c
	}
	return gd
}

type walker struct {
	m  Matcher
	fn func(string, error) error
}

// load pushes the ignore file at name (for the paths below base); a file
// that does not exist pushes an empty list, so every Push has its Pop.
func (w *walker) load(name, base string) error {
	b, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if err := w.fn(name, err); err != nil {
			return err
		}
	}
	w.m.Push(Parse(base, b))
	return nil
}

// dir walks the directory at path, whose path below the top is rel.
func (w *walker) dir(dirPath, rel string) error {
	base := rel
	if base != "" {
		base += "/"
	}
	if err := w.load(filepath.Join(dirPath, ".gitignore"), base); err != nil {
		return err
	}
	defer w.m.Pop()
	ents, err := os.ReadDir(dirPath)
	if err != nil {
		return w.fn(dirPath, err)
	}
	for _, e := range ents {
		if e.Name() == ".git" {
			continue
		}
		p, r := filepath.Join(dirPath, e.Name()), base+e.Name()
		switch t := e.Type(); {
		case t.IsDir():
			if !w.m.Ignored(r, true) {
				if err := w.dir(p, r); err != nil {
					return err
				}
			}
		case t.IsRegular():
			if !w.m.Ignored(r, false) {
				if err := w.fn(p, nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
