package policy

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/tokfence/tokfence/policy/tomlfile"
)

// maxErrors bounds a report: past this many, the file is probably not a
// policy file at all and more lines would only bury the first.
const maxErrors = 20

// problems collects errors for one file, resolving keys to lines.
type problems struct {
	file string
	ix   *tomlfile.Index
	errs tomlfile.Errors
}

// add records a problem with key p.
func (ps *problems) add(p tomlfile.Path, format string, args ...any) {
	ps.errs = append(ps.errs, &tomlfile.Error{
		File: ps.file,
		Line: ps.ix.Line(p),
		Key:  string(p),
		Msg:  fmt.Sprintf(format, args...),
	})
}

// err returns the problems sorted by line, or nil if there are none.
func (ps *problems) err() error {
	if len(ps.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(ps.errs, func(a, b *tomlfile.Error) int { return cmp.Compare(a.Line, b.Line) })
	if len(ps.errs) > maxErrors {
		more := len(ps.errs) - maxErrors
		ps.errs = append(ps.errs[:maxErrors], &tomlfile.Error{File: ps.file, Msg: fmt.Sprintf("and %d more problems", more)})
	}
	return ps.errs
}
