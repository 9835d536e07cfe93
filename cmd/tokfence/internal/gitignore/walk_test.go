package gitignore

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// walkFiles returns the paths Walk yields below dir, relative to it and
// slash-separated, sorted.
func walkFiles(t *testing.T, dir string) []string {
	t.Helper()
	var got []string
	err := Walk(dir, func(p string, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(dir, p)
		got = append(got, filepath.ToSlash(r))
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	slices.Sort(got)
	return got
}

// gitFiles returns what git would offer to add in the repository at dir:
// `git ls-files --others --exclude-standard`, sorted.
func gitFiles(t *testing.T, env []string, dir string) []string {
	var out []string
	for _, p := range strings.Split(git(t, env, dir, "", "ls-files", "--others", "--exclude-standard", "-z"), "\x00") {
		if p != "" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(content), 0o644))
	}
}

func TestWalk(t *testing.T) {
	env := gitEnv(t)
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"a name pattern matches at any depth", map[string]string{
			".gitignore": "*.log\n", "a.log": "", "src/b.log": "", "src/b.go": "",
		}, []string{".gitignore", "src/b.go"}},
		{"a leading slash anchors to the file's directory", map[string]string{
			".gitignore": "/build\n", "build/x": "", "src/build/y": "",
		}, []string{".gitignore", "src/build/y"}},
		{"a trailing slash matches directories only", map[string]string{
			".gitignore": "out/\n", "out/x": "", "src/out": "",
		}, []string{".gitignore", "src/out"}},
		{"a nested file's patterns are relative to it and override", map[string]string{
			".gitignore": "*.txt\n", "sub/.gitignore": "!keep.txt\n/local\n",
			"a.txt": "", "sub/keep.txt": "", "sub/drop.txt": "", "sub/local": "", "local": "",
		}, []string{".gitignore", "local", "sub/.gitignore", "sub/keep.txt"}},
		{"an ignored directory is not entered, so nothing in it comes back", map[string]string{
			".gitignore": "vendor/\n!vendor/keep\n", "vendor/keep": "", "vendor/x": "",
		}, []string{".gitignore"}},
		{"double stars, sets, comments, escapes and trailing spaces", map[string]string{
			".gitignore": "# a comment\n\\#hash\nlogs/**/*.gz\n[ab].c\ntrail  \n\\!bang\nsp\\ \n",
			"#hash":      "", "logs/x/y/z.gz": "", "logs/z.gz": "", "a.c": "", "c.c": "", "trail": "", "!bang": "", "sp ": "", "keep": "",
		}, []string{".gitignore", "c.c", "keep"}},
		{"CRLF lines and a byte-order mark", map[string]string{
			".gitignore": "\ufeffa\r\nb\r\n", "a": "", "b": "", "c": "",
		}, []string{".gitignore", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			git(t, env, root, "", "init", "-q")
			writeTree(t, root, tt.files)
			got := walkFiles(t, root)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Walk = %q, want %q", got, tt.want)
			}
			if g := gitFiles(t, env, root); !slices.Equal(g, tt.want) {
				t.Errorf("git ls-files --others --exclude-standard = %q; the case's want is wrong", g)
			}
		})
	}
}

func TestWalkFromInsideTheWorkTree(t *testing.T) {
	env := gitEnv(t)
	root := t.TempDir()
	git(t, env, root, "", "init", "-q")
	writeTree(t, root, map[string]string{
		".gitignore": "*.log\n/src/gen/\n", "src/a.go": "", "src/a.log": "", "src/gen/x.go": "", "src/lib/b.go": "",
	})
	must(t, os.WriteFile(filepath.Join(root, ".git", "info", "exclude"), []byte("*.tmp\n"), 0o644))
	writeTree(t, root, map[string]string{"src/c.tmp": ""})
	got := walkFiles(t, filepath.Join(root, "src"))
	if want := []string{"a.go", "lib/b.go"}; !slices.Equal(got, want) {
		t.Errorf("Walk(src) = %q, want %q: the top's .gitignore and info/exclude apply below it", got, want)
	}
	// A directory named on purpose is walked even if ignored.
	if got := walkFiles(t, filepath.Join(root, "src", "gen")); !slices.Equal(got, []string{"x.go"}) {
		t.Errorf("Walk(src/gen) = %q, want [x.go]", got)
	}
}

func TestWalkSkipsGitDirLinksAndSpecialFiles(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a": "", ".git/config": "", "d/b": ""})
	must(t, os.Symlink(filepath.Join(root, "d"), filepath.Join(root, "loop")))
	must(t, os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "alink")))
	if got, want := walkFiles(t, root), []string{"a", "d/b"}; !slices.Equal(got, want) {
		t.Errorf("Walk = %q, want %q", got, want)
	}
}

// TestWalkAgainstGit builds random trees with random .gitignore files
// (at several depths, with negations, anchors, directory-only patterns,
// stars, double stars, sets) and holds Walk to git ls-files on each.
func TestWalkAgainstGit(t *testing.T) {
	env := gitEnv(t)
	trees := 150
	if testing.Short() {
		trees = 20
	}
	for seed := range uint64(trees) {
		rng := rand.New(rand.NewPCG(seed, 17))
		root := t.TempDir()
		git(t, env, root, "", "init", "-q")
		files, ignores := randomTree(rng)
		writeTree(t, root, files)
		for dir, lines := range ignores {
			p := filepath.Join(root, filepath.FromSlash(dir), ".gitignore")
			if dir == "info" {
				p = filepath.Join(root, ".git", "info", "exclude")
			}
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
		}
		got, want := walkFiles(t, root), gitFiles(t, env, root)
		if !slices.Equal(got, want) {
			var desc strings.Builder
			for dir, lines := range ignores {
				fmt.Fprintf(&desc, "  %s: %q\n", dir, lines)
			}
			t.Fatalf("seed %d: Walk = %q\ngit ls-files = %q\nignore files:\n%s", seed, got, want, desc.String())
		}
	}
}

var (
	treeNames = []string{"a", "b", "ab", "ba", "a.c", "b.c", ".x", "ab.c", "c"}
	globParts = []string{"a", "b", "ab", "*", "?", "**", "[ab]", "[!a]", "a*", "*.c", "*b", "?.c", "[a-b]*"}
)

// randomTree returns a tree of files (path -> content) and ignore files
// (directory -> lines; "info" for .git/info/exclude).
func randomTree(rng *rand.Rand) (map[string]string, map[string][]string) {
	files := map[string]string{}
	var dirs []string
	var grow func(dir string, depth int)
	grow = func(dir string, depth int) {
		dirs = append(dirs, dir)
		for range 1 + rng.IntN(4) {
			name := treeNames[rng.IntN(len(treeNames))]
			p := strings.TrimPrefix(dir+"/"+name, "/")
			if _, taken := files[p]; taken || slices.Contains(dirs, p) {
				continue
			}
			if depth < 3 && rng.IntN(2) == 0 {
				grow(p, depth+1)
			} else {
				files[p] = ""
			}
		}
	}
	grow("", 0)
	ignores := map[string][]string{}
	for _, d := range append(dirs, "info") {
		if d != "" && d != "info" && rng.IntN(3) != 0 {
			continue
		}
		for range 1 + rng.IntN(4) {
			ignores[d] = append(ignores[d], randomPattern(rng))
		}
	}
	for d := range ignores { // a file may not stand where a directory is
		if d != "info" {
			delete(files, strings.TrimPrefix(d+"/.gitignore", "/"))
		}
	}
	return files, ignores
}

func randomPattern(rng *rand.Rand) string {
	parts := make([]string, 1+rng.IntN(3))
	for i := range parts {
		parts[i] = globParts[rng.IntN(len(globParts))]
	}
	p := strings.Join(parts, "/")
	if rng.IntN(4) == 0 {
		p = "/" + p
	}
	if rng.IntN(4) == 0 {
		p += "/"
	}
	if rng.IntN(3) == 0 {
		p = "!" + p
	}
	return p
}
