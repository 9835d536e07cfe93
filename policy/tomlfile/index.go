package tomlfile

import (
	"strconv"
	"strings"
)

// Path names a key in a TOML file the way errors show it:
// `agent.coder.rule[2].match.class`, with 1-based indexes and components
// quoted when they are not bare TOML keys.
type Path string

// Key returns p extended by the component k.
func (p Path) Key(k string) Path {
	if !isBareKey(k) {
		k = strconv.Quote(k)
	}
	if p == "" {
		return Path(k)
	}
	return p + "." + Path(k)
}

// At returns p extended by the 0-based index i, shown 1-based.
func (p Path) At(i int) Path { return p + "[" + Path(strconv.Itoa(i+1)) + "]" }

// Parent returns p without its last component or index, or "".
func (p Path) Parent() Path {
	if i := strings.LastIndexByte(string(p), '['); i >= 0 && strings.HasSuffix(string(p), "]") {
		return p[:i]
	}
	cut, quoted := -1, false
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '\\' && quoted:
			i++
		case p[i] == '"':
			quoted = !quoted
		case p[i] == '.' && !quoted:
			cut = i
		}
	}
	if cut < 0 {
		return ""
	}
	return p[:cut]
}

func isBareKey(k string) bool {
	for _, c := range []byte(k) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return k != ""
}

// Index maps the keys of a TOML document to the lines that define them.
// BurntSushi/toml keeps key positions private, so semantic errors found after
// decoding are placed by this light line scanner. It only has to be right for
// documents the decoder already accepted; where it cannot tell, lookups fall
// back to the nearest enclosing key. On any other input it gives wrong
// lines, never a panic (FuzzIndex).
type Index struct {
	lines  map[Path]int    // indexed Path → line
	plain  map[string]Path // unindexed dotted Path → first indexed Path
	tables map[string]int  // array-table plain Path → tables seen so far
}

// NewIndex scans data, a TOML document, for the lines of its keys.
func NewIndex(data []byte) *Index {
	ix := &Index{lines: map[Path]int{}, plain: map[string]Path{}, tables: map[string]int{}}
	var prefix []string // plain components of the current table
	var arr *arrayScan  // set while inside a multi-line array
	mlEnd := ""         // set while inside a multi-line string
	for n, line := range strings.Split(string(data), "\n") {
		lineNo := n + 1
		t := strings.TrimSpace(line)
		switch {
		case mlEnd != "":
			if strings.Contains(line, mlEnd) {
				mlEnd = ""
			}
		case arr != nil:
			if arr.feed(line, lineNo, ix) {
				arr = nil
			}
		case t == "" || t[0] == '#':
		case strings.HasPrefix(t, "[["):
			prefix = splitKey(strings.TrimSuffix(cutComment(t[2:]), "]]"))
			ix.tables[strings.Join(prefix, ".")]++
			ix.add(prefix, lineNo)
		case t[0] == '[':
			prefix = splitKey(strings.TrimSuffix(cutComment(t[1:]), "]"))
			ix.add(prefix, lineNo)
		default:
			k, v, ok := cutAssign(t)
			if !ok {
				continue
			}
			full := append(append([]string(nil), prefix...), splitKey(k)...)
			p := ix.add(full, lineNo)
			v = strings.TrimSpace(v)
			switch {
			case strings.HasPrefix(v, `"""`) && !strings.Contains(v[3:], `"""`):
				mlEnd = `"""`
			case strings.HasPrefix(v, `'''`) && !strings.Contains(v[3:], `'''`):
				mlEnd = `'''`
			case strings.HasPrefix(v, "["):
				arr = &arrayScan{Path: p}
				if arr.feed(v, lineNo, ix) {
					arr = nil
				}
			}
		}
	}
	return ix
}

// add records the key with plain components comps at line, inserting the
// current index of every array table on the way, and returns its Path.
func (ix *Index) add(comps []string, line int) Path {
	var p Path
	for i, c := range comps {
		p = p.Key(c)
		if n := ix.tables[strings.Join(comps[:i+1], ".")]; n > 0 {
			p = p.At(n - 1)
		}
	}
	if _, ok := ix.lines[p]; !ok {
		ix.lines[p] = line
	}
	plain := strings.Join(comps, ".")
	if _, ok := ix.plain[plain]; !ok {
		ix.plain[plain] = p
	}
	return p
}

// Line returns the line defining p or its nearest enclosing key, or 0.
func (ix *Index) Line(p Path) int {
	for ; p != ""; p = p.Parent() {
		if l, ok := ix.lines[p]; ok {
			return l
		}
	}
	return 0
}

// Locate returns the indexed Path of the first definition of a key the
// decoder reported by its plain components (a toml.Key, as
// toml.MetaData.Undecoded lists them).
func (ix *Index) Locate(comps []string) Path {
	for i := len(comps); i > 0; i-- {
		if p, ok := ix.plain[strings.Join(comps[:i], ".")]; ok {
			for _, c := range comps[i:] {
				p = p.Key(c)
			}
			return p
		}
	}
	var p Path
	for _, c := range comps {
		p = p.Key(c)
	}
	return p
}

// arrayScan follows an array value across lines, recording the line of each
// top-level element as Path[i].
type arrayScan struct {
	Path   Path
	depth  int
	n      int
	inElem bool
	quote  byte
}

// feed scans one line and reports whether the array closed on it.
func (a *arrayScan) feed(s string, line int, ix *Index) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if a.quote != 0 {
			if c == '\\' && a.quote == '"' {
				i++
			} else if c == a.quote {
				a.quote = 0
			}
			continue
		}
		switch c {
		case '#':
			return false
		case ' ', '\t', '\r':
			continue
		case ',':
			if a.depth == 1 {
				a.inElem = false
			}
			continue
		case ']', '}':
			a.depth--
			if a.depth == 0 {
				return true
			}
			continue
		}
		if a.depth == 1 && !a.inElem {
			ix.lines[a.Path.At(a.n)] = line
			a.n++
			a.inElem = true
		}
		switch c {
		case '"', '\'':
			a.quote = c
		case '[', '{':
			a.depth++
		}
	}
	return false
}

// splitKey splits a dotted TOML key, honouring quotes.
func splitKey(s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; {
		var part string
		if s[0] == '"' || s[0] == '\'' {
			end := strings.IndexByte(s[1:], s[0]) + 1 // the closing quote, or 0
			if end == 0 {
				// Unterminated (only in a file the decoder refused):
				// the rest is the key.
				part, s = s[1:], ""
			} else {
				part = s[1:end]
				if u, err := strconv.Unquote(s[:end+1]); err == nil && s[0] == '"' {
					part = u
				}
				s = s[end+1:]
			}
		} else {
			i := strings.IndexByte(s, '.')
			if i < 0 {
				i = len(s)
			}
			part, s = strings.TrimSpace(s[:i]), s[i:]
		}
		out = append(out, part)
		s = strings.TrimPrefix(strings.TrimSpace(s), ".")
		s = strings.TrimSpace(s)
	}
	return out
}

// cutAssign splits "key = value" at the first '=' outside quotes.
func cutAssign(s string) (key, value string, ok bool) {
	var quote byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// cutComment drops a trailing comment from a table header line.
func cutComment(s string) string {
	if i := strings.LastIndex(s, "#"); i >= 0 && strings.LastIndex(s, "]") < i {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
