package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/syncengine"
)

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
	const usage = "record set ID field=value ...  (photo=@FILE attaches a file to a photo, audio, video or file question)"
	return c.withRecord("record set", usage, args, 2, nil, func(d *fieldapp.Device, id syncengine.RecordID, rest []string) error {
		fields, err := parseFields(rest)
		if err != nil {
			return err
		}
		if err := c.attachFiles(d, id, fields); err != nil {
			return err
		}
		return d.Set(c.ctx, id, fields)
	})
}

// attachFiles stores the files named @FILE for media questions and puts
// the answers that name them in their place. The file is read straight
// into the encrypted store.
func (c *cli) attachFiles(d *fieldapp.Device, id syncengine.RecordID, fields []syncengine.FieldWrite) error {
	var rec *syncengine.Record
	for i, f := range fields {
		path, ok := strings.CutPrefix(f.Value.String(), "@")
		if !ok || f.Value.Kind != syncengine.Text {
			continue
		}
		if rec == nil {
			var err error
			if rec, err = d.Record(c.ctx, id); err != nil {
				return err
			}
		}
		if err := d.CheckMedia(c.ctx, rec.Form, f.Name); errors.Is(err, fieldapp.ErrNotMedia) {
			continue // "@..." typed as a text answer
		} else if err != nil {
			return err
		}
		file, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		w, err := d.Attach(c.ctx, id, filepath.Base(path), file)
		file.Close()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", f.Name, path, err)
		}
		fields[i].Value = w.Value
	}
	return nil
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
	removed, err := d.Removed(c.ctx)
	if err != nil {
		return fmt.Errorf("record list: %w", err)
	}
	err = d.Records(c.ctx, func(r *syncengine.Record) error {
		v := fieldapp.View(r)
		v.Removed = removed[r.ID]
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
			case v.Removed && len(v.Fields) == 0:
				status = "sent-removed"
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
