package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/internal/cliutil"
	"github.com/tessera-survey/tessera/syncengine"
)

// importBatch records go in one transaction: large enough to amortize the
// fsync, small enough for a device's Badger transaction limit.
const importBatch = 1000

func (c *cli) recordImport(args []string) error {
	fs := flag.NewFlagSet("record import", flag.ContinueOnError)
	pos, err := c.parse(fs, "record import FILE.jsonl   (- reads standard input)", args, 1, 1)
	if err != nil {
		return helpOK(err)
	}
	var src io.Reader = c.stdin
	var reopen func() (io.ReadCloser, error)
	if pos[0] != "-" {
		reopen = func() (io.ReadCloser, error) { return os.Open(pos[0]) }
	} else {
		// Standard input cannot be read twice: keep it in memory.
		b, err := io.ReadAll(src)
		if err != nil {
			return err
		}
		reopen = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(b))), nil }
	}
	// First pass: check every line, so a bad file imports nothing.
	total, err := scanImport(reopen, nil)
	if err != nil {
		return fmt.Errorf("record import: %w (nothing imported)", err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	start := time.Now()
	done := 0
	// A progress line redrawn with carriage returns is for a person
	// watching a terminal; a log file gets only the summary.
	progress := total > 10*importBatch && cliutil.IsTerminal(c.stderr)
	batch := make([]syncengine.NewRecord, 0, importBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := d.Import(c.ctx, batch); err != nil {
			return err
		}
		done += len(batch)
		batch = batch[:0]
		if progress {
			fmt.Fprintf(c.stderr, "\rimported %d/%d records", done, total)
		}
		return nil
	}
	_, err = scanImport(reopen, func(nr syncengine.NewRecord) error {
		batch = append(batch, nr)
		if len(batch) == importBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if progress {
		fmt.Fprintln(c.stderr)
	}
	if err != nil {
		return fmt.Errorf("record import: %w (%d records imported before the error)", err, done)
	}
	el := time.Since(start)
	fmt.Fprintf(c.stdout, "imported %d records in %s (%.0f records/s)\n", done, el.Round(time.Millisecond), float64(done)/max(el.Seconds(), 1e-9))
	if done >= 10*importBatch {
		// Compact now, while an import is expected to take a while, rather
		// than at the next unlock.
		t0 := time.Now()
		if err := d.Settle(); err != nil {
			return fmt.Errorf("record import: compacting the store: %w", err)
		}
		fmt.Fprintf(c.stdout, "store compacted in %s\n", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

type importLine struct {
	Form   string         `json:"form"`
	Fields map[string]any `json:"fields"`
}

// scanImport reads an import file; with fn nil it only validates, reporting
// up to 20 bad lines at once.
func scanImport(open func() (io.ReadCloser, error), fn func(syncengine.NewRecord) error) (int, error) {
	f, err := open()
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var problems []string
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		nr, err := parseImportLine(text)
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", line, err))
			if len(problems) == 20 {
				break
			}
			continue
		}
		n++
		if fn != nil {
			if err := fn(nr); err != nil {
				return n, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return n, err
	}
	if len(problems) > 0 {
		return n, errors.New(strings.Join(problems, "\n  "))
	}
	return n, nil
}

func parseImportLine(text string) (syncengine.NewRecord, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var l importLine
	if err := dec.Decode(&l); err != nil {
		return syncengine.NewRecord{}, fmt.Errorf("not a JSON object of form and fields: %v", err)
	}
	if l.Form == "" {
		return syncengine.NewRecord{}, errors.New(`"form" is missing`)
	}
	if len(l.Fields) == 0 {
		return syncengine.NewRecord{}, errors.New(`"fields" is missing or empty`)
	}
	names := make([]string, 0, len(l.Fields))
	for k := range l.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	nr := syncengine.NewRecord{Form: l.Form, Fields: make([]syncengine.FieldWrite, 0, len(names))}
	for _, k := range names {
		if err := syncengine.ValidateFieldName(k); err != nil {
			return nr, err
		}
		v, err := syncengine.ValueFromJSON(l.Fields[k])
		if err != nil {
			return nr, fmt.Errorf("field %q: %w", k, err)
		}
		nr.Fields = append(nr.Fields, syncengine.FieldWrite{Name: k, Value: v})
	}
	return nr, nil
}
