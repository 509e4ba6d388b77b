package badgerstore

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimMapped asks the kernel to page out this process's mappings of the
// store's table, value-log and write-ahead files (dirty pages of the
// latter are written back first, as msync would). Badger reads every table through
// mmap, so a scan of a phone's whole store (a first sync of 100,000
// records) leaves all of it counted in the app's resident memory until the
// kernel is short of memory. MADV_PAGEOUT is advice: contents never change
// (pages come back from the file on the next read), and a mapping that
// changed since /proc/self/maps was read is paged out at worst, never
// altered. Kernels before 5.4 refuse it (EINVAL), which is ignored.
//
// keepTail spares the newest value-log file, the one being written: a
// server's uploads append to it, and paging it out made every commit read
// its partly written last page back from disk.
func trimMapped(dir string, suffixes []string, keepTail bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	type mapping struct {
		path       string
		start, end uint64
	}
	var maps []mapping
	tail := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		path := fields[5]
		if !strings.HasPrefix(path, abs+string(filepath.Separator)) || !slices.ContainsFunc(suffixes, func(x string) bool { return strings.HasSuffix(path, x) }) {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		maps = append(maps, mapping{path, start, end})
		if strings.HasSuffix(path, ".vlog") && path > tail { // names are zero-padded numbers
			tail = path
		}
	}
	for _, m := range maps {
		if keepTail && m.path == tail {
			continue
		}
		unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_PAGEOUT)
	}
}
