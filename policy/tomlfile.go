package policy

import "github.com/BurntSushi/toml"

// FileError turns a TOML decoder error for the file filename (contents
// data) into an error naming the file and line, as policy errors do. The
// daemon's config file uses it too, so both files report errors the same
// way.
func FileError(filename string, data []byte, err error) error {
	return decodeError(filename, data, err)
}

// KeyLine returns the 1-based line on which the TOML key k (as reported by
// toml.MetaData.Undecoded) is defined in data, or the line of its nearest
// enclosing key, or 0.
func KeyLine(data []byte, k toml.Key) int {
	ix := indexKeys(data)
	return ix.line(ix.locate(k))
}
