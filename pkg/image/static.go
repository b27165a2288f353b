package image

import "debug/elf"

// IsStatic says whether the ELF file at path has no program interpreter (needs no dynamic
// loader), so it runs in an image that holds nothing else.
func IsStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
