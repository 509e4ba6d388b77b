// Package cli is the fieldapp command line: init (enrollment), records
// (new, set, get, list, finalize, resolve, delete, import), forms, sync,
// info, the PIN and serve (the web UI). Each command is an adapter over the
// Device API (package fieldapp): flags and text in, the API's results out.
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/tessera-survey/tessera/fieldapp"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/internal/cliutil"
	"github.com/tessera-survey/tessera/syncengine"
	"golang.org/x/term"
)

const mainUsage = `fieldapp: Tessera on an enumerator's device. Works offline; syncs when a
link to the server (or camp-office hub) exists.

Usage:
  fieldapp [--data DIR] COMMAND [ARGS]

Commands:
  init --server URL [--enroll CODE]  create the encrypted device store (asks for a PIN), enrolled with a lead's code
  serve [--listen ADDR]              the interview web UI on this device (default 127.0.0.1:8081)
  pin change                         change the PIN (asks for the current one, then the new one twice)
  record new FORM [field=value ...]  create a record; prints its id
  record set ID field=value ...      change answers
  record delete ID                   delete a record (a concurrent edit is kept as a conflict)
  record get ID [--json]             show a record, conflicts included
  record list [--json]               list records
  record resolve ID field=value ...  settle conflicting answers (or --restore / --delete)
  record finalize ID [--lang L]      compute calculations and check the record against its form
  record import FILE.jsonl           bulk-create records, one {"form":..,"fields":{..}} per line
  form list [--json]                 the forms on this device (fetched when syncing)
  sync [--json] [--server URL]       push what the server lacks, then pull what is new (--progress: a line per round trip)
  info [--json]                      show the replica id, server and pending changes

Values: 12 is an integer, 1.5 a decimal, true/false a boolean, null clears
the answer; anything else (including 007 or 1e3) is text.

The store is encrypted with a key derived from the enumerator's PIN (or
passphrase, at least 4 characters); every command that opens it asks for the
PIN on the terminal, or reads it from TESSERA_PIN (pin change reads the new
one from TESSERA_NEW_PIN). A wrong PIN waits 1 s, doubling with each wrong
PIN in a row (at most 30 s).

Profiling (developers): TESSERA_CPUPROFILE=FILE and TESSERA_MEMPROFILE=FILE
write the command's CPU and allocation profiles for go tool pprof.

Global flags:
`

// Main runs the fieldapp command line.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", envOr("TESSERA_DATA", "./device"), "device data directory (env TESSERA_DATA)")
	fs.Usage = func() { fmt.Fprint(stderr, mainUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	if fs.Arg(0) == "help" {
		fs.Usage()
		return nil
	}
	stop, err := cliutil.Profile()
	if err != nil {
		return err
	}
	err = (&cli{ctx: ctx, dir: *data, stdin: stdin, stdout: stdout, stderr: stderr}).run(fs.Arg(0), fs.Args()[1:])
	if perr := stop(); err == nil {
		err = perr
	}
	return err
}

func (c *cli) run(cmd string, rest []string) error {
	switch cmd {
	case "init":
		return c.init(rest)
	case "record":
		return c.record(rest)
	case "sync":
		limitMemory()
		return c.sync(rest)
	case "form":
		return c.form(rest)
	case "info":
		return c.info(rest)
	case "serve":
		return c.serve(rest)
	case "pin":
		return c.pinCmd(rest)
	}
	return fmt.Errorf("unknown command %q (see fieldapp --help)", cmd)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func helpOK(err error) error { return cliutil.HelpOK(err) }

type cli struct {
	ctx            context.Context
	dir            string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// parse parses flags that may stand before, between or after positional
// arguments ("record get ID --json") and checks the positional count.
func (c *cli) parse(fs *flag.FlagSet, usage string, args []string, minPos, maxPos int) ([]string, error) {
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: fieldapp [--data DIR] %s\n", usage)
		fs.PrintDefaults()
	}
	pos, err := cliutil.Parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) < minPos || (maxPos >= 0 && len(pos) > maxPos) {
		fs.Usage()
		return nil, fmt.Errorf("%s: wrong number of arguments", strings.Join(strings.Fields(usage)[:min(2, len(strings.Fields(usage)))], " "))
	}
	return pos, nil
}

func (c *cli) open() (*fieldapp.Device, error) {
	if err := c.haveStore(); err != nil {
		return nil, err
	}
	pin, err := c.pin(false)
	if err != nil {
		return nil, err
	}
	return fieldapp.Open(c.ctx, c.dir, pin)
}

// haveStore is ErrNoStore when --data holds no device store.
func (c *cli) haveStore() error {
	if !fieldapp.Exists(c.dir) {
		return fmt.Errorf("%s: %w", c.dir, fieldapp.ErrNoStore)
	}
	return nil
}

// pin reads the PIN from TESSERA_PIN or, on a terminal, asks for it
// without echo (twice when confirm is set, for a new PIN).
func (c *cli) pin(confirm bool) (string, error) {
	return c.secret("TESSERA_PIN", "PIN", confirm, fieldapp.ErrNoPIN)
}

// secret reads a PIN from the environment variable env or, on a terminal,
// asks for it without echo (twice when confirm is set); noTerminal is the
// error when neither is there.
func (c *cli) secret(env, name string, confirm bool, noTerminal error) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", noTerminal
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(c.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		return string(b), err
	}
	p, err := ask(name + ": ")
	if err != nil || !confirm {
		return p, err
	}
	again, err := ask(name + " again: ")
	if err != nil {
		return "", err
	}
	if again != p {
		return "", fmt.Errorf("the two %ss differ", name)
	}
	return p, nil
}

func (c *cli) init(args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	server := fs.String("server", "", "URL of the server or hub to sync with, e.g. http://127.0.0.1:8080")
	code := fs.String("enroll", "", "enrollment code from the project lead (surveyctl device code); required by servers that require sign-in")
	if _, err := c.parse(fs, "init --server URL [--enroll CODE]", args, 0, 0); err != nil {
		return helpOK(err)
	}
	if *server == "" {
		return errors.New("init: --server URL is required")
	}
	if fieldapp.Exists(c.dir) {
		return fmt.Errorf("init %s: %w: a device store is already there", c.dir, syncengine.ErrExists)
	}
	pin, err := c.pin(true)
	if err != nil {
		return err
	}
	d, err := fieldapp.Init(c.ctx, c.dir, fieldapp.Config{Server: *server, Enroll: *code, PIN: pin})
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(c.stdout, "initialized device %s in %s (server %s)\n", d.ID(), c.dir, *server)
	if p, t, _ := d.Enrollment(c.ctx); p != "" {
		fmt.Fprintf(c.stdout, "enrolled in project %s%s\n", p, map[bool]string{true: ", team " + t, false: ""}[t != ""])
	}
	return nil
}

const recordUsage = `Usage: fieldapp [--data DIR] record SUBCOMMAND

Subcommands: new, set, delete, get, list, resolve, finalize, import (each has --help).
`

func (c *cli) record(args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(c.stderr, recordUsage)
		if len(args) == 0 {
			return errors.New("record: no subcommand given")
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "new":
		return c.recordNew(rest)
	case "set":
		return c.recordSet(rest)
	case "delete":
		return c.recordDelete(rest)
	case "get":
		return c.recordGet(rest)
	case "list":
		return c.recordList(rest)
	case "resolve":
		return c.recordResolve(rest)
	case "import":
		return c.recordImport(rest)
	case "finalize":
		return c.recordFinalize(rest)
	}
	return fmt.Errorf("record: unknown subcommand %q", sub)
}

// parseFields reads field=value arguments.
func parseFields(args []string) ([]syncengine.FieldWrite, error) {
	var out []syncengine.FieldWrite
	seen := map[string]bool{}
	for _, a := range args {
		name, val, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want field=value", a)
		}
		if err := syncengine.ValidateFieldName(name); err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, fmt.Errorf("field %q given twice", name)
		}
		seen[name] = true
		out = append(out, syncengine.FieldWrite{Name: name, Value: syncengine.ParseValue(val)})
	}
	return out, nil
}

func (c *cli) recordNew(args []string) error {
	fs := flag.NewFlagSet("record new", flag.ContinueOnError)
	pos, err := c.parse(fs, "record new FORM [field=value ...]", args, 1, -1)
	if err != nil {
		return helpOK(err)
	}
	form := pos[0]
	fields, err := parseFields(pos[1:])
	if err != nil {
		return fmt.Errorf("record new: %w", err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	id, err := d.Create(c.ctx, form, fields)
	if err != nil {
		return fmt.Errorf("record new: %w", err)
	}
	fmt.Fprintln(c.stdout, id)
	return nil
}

func (c *cli) withRecord(name, usage string, args []string, minPos int, fs *flag.FlagSet,
	fn func(d *fieldapp.Device, id syncengine.RecordID, rest []string) error) error {
	if fs == nil {
		fs = flag.NewFlagSet(name, flag.ContinueOnError)
	}
	pos, err := c.parse(fs, usage, args, minPos, -1)
	if err != nil {
		return helpOK(err)
	}
	id, err := syncengine.ParseRecordID(pos[0])
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	if err := fn(d, id, pos[1:]); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (c *cli) recordSet(args []string) error {
	return c.withRecord("record set", "record set ID field=value ...", args, 2, nil, func(d *fieldapp.Device, id syncengine.RecordID, rest []string) error {
		fields, err := parseFields(rest)
		if err != nil {
			return err
		}
		return d.Set(c.ctx, id, fields)
	})
}

func (c *cli) recordDelete(args []string) error {
	return c.withRecord("record delete", "record delete ID", args, 1, nil, func(d *fieldapp.Device, id syncengine.RecordID, rest []string) error {
		if len(rest) > 0 {
			return fmt.Errorf("unexpected argument %q", rest[0])
		}
		return d.Delete(c.ctx, id)
	})
}

func (c *cli) recordResolve(args []string) error {
	fs := flag.NewFlagSet("record resolve", flag.ContinueOnError)
	restore := fs.Bool("restore", false, "settle a delete conflict by keeping the record")
	del := fs.Bool("delete", false, "settle a delete conflict by confirming the delete")
	return c.withRecord("record resolve", "record resolve ID field=value ... | --restore | --delete", args, 1, fs,
		func(d *fieldapp.Device, id syncengine.RecordID, rest []string) error {
			if *restore || *del {
				if *restore == *del || len(rest) > 0 {
					return errors.New("give either --restore or --delete, alone")
				}
				return d.ResolveDelete(c.ctx, id, *restore)
			}
			fields, err := parseFields(rest)
			if err != nil {
				return err
			}
			if len(fields) == 0 {
				return errors.New("give field=value for each field to settle")
			}
			return d.Resolve(c.ctx, id, fields)
		})
}

func (c *cli) recordFinalize(args []string) error {
	fs := flag.NewFlagSet("record finalize", flag.ContinueOnError)
	lang := fs.String("lang", "", "language of the messages, as named in the form (e.g. \"French (fr)\"); the form's default when empty")
	asJSON := fs.Bool("json", false, "print violations as JSON")
	return c.withRecord("record finalize", "record finalize ID [--lang L] [--json]", args, 1, fs, func(d *fieldapp.Device, id syncengine.RecordID, rest []string) error {
		if len(rest) > 0 {
			return fmt.Errorf("unexpected argument %q", rest[0])
		}
		vs, err := d.Finalize(c.ctx, id, *lang)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			fmt.Fprintf(c.stdout, "finalized %s\n", id)
			return nil
		}
		if *asJSON {
			writeJSON(c.stdout, vs)
		} else {
			for _, v := range vs {
				fmt.Fprintf(c.stdout, "%s (row %d): %s\n", v.Field, v.Row, v.Message)
			}
		}
		return fmt.Errorf("not finalized: %d answer(s) to fix", len(vs))
	})
}

func (c *cli) form(args []string) error {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprint(c.stderr, "Usage: fieldapp [--data DIR] form list [--json]\n")
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return errors.New("form: the subcommand is list")
	}
	fs := flag.NewFlagSet("form list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, "form list [--json]", args[1:], 0, 0); err != nil {
		return helpOK(err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	list, err := d.FormList(c.ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if list == nil {
			list = []forms.Info{}
		}
		return writeJSON(c.stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(c.stdout, "no forms on this device yet: sync to fetch the published ones")
	}
	for _, i := range list {
		fmt.Fprintf(c.stdout, "%s\t%s\t%d questions\t%s\n", i.Key(), i.Title, i.Questions, strings.Join(i.Languages, ", "))
	}
	return nil
}

func (c *cli) recordGet(args []string) error {
	fs := flag.NewFlagSet("record get", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withRecord("record get", "record get ID [--json]", args, 1, fs, func(d *fieldapp.Device, id syncengine.RecordID, rest []string) error {
		if len(rest) > 0 {
			return fmt.Errorf("unexpected argument %q", rest[0])
		}
		rec, err := d.Record(c.ctx, id)
		if err != nil {
			return err
		}
		v := fieldapp.View(rec)
		if *asJSON {
			return writeJSON(c.stdout, v)
		}
		printRecord(c.stdout, v)
		return nil
	})
}

func writeJSON(w io.Writer, v any) error { return cliutil.WriteJSON(w, v) }

func printRecord(w io.Writer, v fieldapp.RecordView) {
	status := ""
	switch {
	case v.DeleteConflict:
		status = "  [DELETE CONFLICT: deleted on one device, edited on another]"
	case v.Deleted:
		status = "  [deleted]"
	}
	fmt.Fprintf(w, "%s  form %s%s\n", v.ID, v.Form, status)
	names := make([]string, 0, len(v.Fields))
	for n := range v.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := v.Fields[n]
		if len(f.Conflicts) == 0 {
			fmt.Fprintf(w, "  %s = %s\n", n, f.Value)
			continue
		}
		fmt.Fprintf(w, "  %s = CONFLICT (%d values; showing %s until resolved)\n", n, len(f.Conflicts), f.Value)
		for _, cv := range f.Conflicts {
			fmt.Fprintf(w, "      %s   from %s at %s\n", cv.Value, cv.Replica, cv.Time)
		}
	}
}

func (c *cli) recordList(args []string) error {
	fs := flag.NewFlagSet("record list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print a JSON array of records (the shape of record get --json)")
	if _, err := c.parse(fs, "record list [--json]", args, 0, 0); err != nil {
		return helpOK(err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	w := bufio.NewWriter(c.stdout)
	defer w.Flush()
	n := 0
	if *asJSON {
		fmt.Fprint(w, "[")
	}
	err = d.Records(c.ctx, func(r *syncengine.Record) error {
		v := fieldapp.View(r)
		if *asJSON {
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if n > 0 {
				w.WriteString(",")
			}
			w.WriteString("\n")
			w.Write(b)
		} else {
			status := "ok"
			switch {
			case v.DeleteConflict:
				status = "delete-conflict"
			case v.Deleted:
				status = "deleted"
			case len(v.ConflictFields()) > 0:
				status = "conflict:" + strings.Join(v.ConflictFields(), ",")
			}
			fmt.Fprintf(w, "%s\t%s\t%d fields\t%s\n", v.ID, v.Form, len(v.Fields), status)
		}
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("record list: %w", err)
	}
	if *asJSON {
		fmt.Fprint(w, "\n]\n")
	}
	return nil
}

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

func (c *cli) sync(args []string) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	server := fs.String("server", "", "sync with this URL instead of the configured server (and remember it)")
	lines := fs.Bool("progress", false, "print a progress line per round trip to stderr, also when it is not a terminal (the log of an unattended sync)")
	if _, err := c.parse(fs, "sync [--json] [--server URL] [--progress]", args, 0, 0); err != nil {
		return helpOK(err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	if *server != "" {
		if err := d.SetServer(c.ctx, *server); err != nil {
			return fmt.Errorf("sync: --server: %w", err)
		}
	}
	tty := cliutil.IsTerminal(c.stderr)
	res, err := d.Sync(c.ctx, "", func(r fieldapp.SyncResult) {
		if *lines {
			fmt.Fprintf(c.stderr, "sync: %d sent, %d received, %s\n", r.Pushed, r.Pulled, cliutil.Bytes(r.BytesSent+r.BytesReceived))
			return
		}
		if tty && !*asJSON {
			fmt.Fprintf(c.stderr, "\rsyncing: %d sent, %d received, %s", r.Pushed, r.Pulled, cliutil.Bytes(r.BytesSent+r.BytesReceived))
		}
	})
	if tty && !*asJSON && !*lines {
		fmt.Fprint(c.stderr, "\r\033[K")
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(c.stderr, "warning:", w)
	}
	res.UnlockMS = float64(d.Opened().Unlock.Microseconds()) / 1000
	res.OpenMS = float64(d.Opened().Store.Microseconds()) / 1000
	if err != nil {
		return fmt.Errorf("sync with %s: %w (what was sent or received before the error is kept; sync again to resume)", res.Server, err)
	}
	if *asJSON {
		return writeJSON(c.stdout, res)
	}
	fmt.Fprintf(c.stdout, "synced with %s: pushed %d changes, pulled %d (%d new) in %d round trips; %s sent, %s received, %.0f ms\n",
		res.Server, res.Pushed, res.Pulled, res.Applied, res.RoundTrips, cliutil.Bytes(res.BytesSent), cliutil.Bytes(res.BytesReceived), res.DurationMS)
	if res.Wiped {
		fmt.Fprintln(c.stdout, "this device was wiped at the server's request: everything it held had been sent; its store is erased")
	}
	if res.ResentAll {
		fmt.Fprintln(c.stdout, "the server had lost data: everything on this device was sent again")
	}
	if len(res.FormsFetched) > 0 {
		fmt.Fprintf(c.stdout, "new forms: %s\n", strings.Join(res.FormsFetched, ", "))
	}
	return nil
}

func (c *cli) info(args []string) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, "info [--json]", args, 0, 0); err != nil {
		return helpOK(err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	server, err := d.Server(c.ctx)
	if err != nil {
		return err
	}
	pending, err := d.Pending(c.ctx)
	if err != nil {
		return err
	}
	project, team, _ := d.Enrollment(c.ctx)
	info := map[string]any{"replica": d.ID(), "server": server, "pending": pending, "data": c.dir,
		"project": project, "team": team}
	if *asJSON {
		return writeJSON(c.stdout, info)
	}
	fmt.Fprintf(c.stdout, "device %s\nserver %s\ndata   %s\n%d changes not yet acknowledged by the server\n", info["replica"], server, c.dir, pending)
	return nil
}

func (c *cli) pinCmd(args []string) error {
	if len(args) == 0 || args[0] != "change" {
		fmt.Fprint(c.stderr, "Usage: fieldapp [--data DIR] pin change\n\nChanges the PIN the store's key is derived from (the UI must be stopped or locked).\nThe current PIN comes from TESSERA_PIN or the terminal, the new one from\nTESSERA_NEW_PIN or the terminal (twice).\n")
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return errors.New("pin: the subcommand is change")
	}
	if err := c.haveStore(); err != nil {
		return err
	}
	old, err := c.pin(false)
	if err != nil {
		return err
	}
	next, err := c.secret("TESSERA_NEW_PIN", "New PIN", true, errors.New("pin change: give the new PIN on the terminal or in TESSERA_NEW_PIN"))
	if err != nil {
		return err
	}
	if err := fieldapp.ChangePIN(c.ctx, c.dir, old, next); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "PIN changed")
	return nil
}
