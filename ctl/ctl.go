// Package ctl is surveyctl, the command line of admins, project leads and
// analysts: sign in, projects, users and roles, device enrollment codes,
// revocation and wipes, the audit trail's check, forms (check offline,
// publish, list), flagged records, reviews, and exports to files or
// incremental mirrors (csv, jsonl, parquet, geojson).
package ctl

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/cliutil"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/syncengine"
)

const usage = `surveyctl: Tessera for project leads and analysts.

Usage:
  surveyctl [--server URL] COMMAND [ARGS]

Commands:
  login [--user NAME] [--setup-token T]   sign in (password from TESSERA_PASSWORD or the terminal); keeps the session
  logout | whoami
  project create NAME                      (admin)
  project policy NAME [--delete-after-send=true|false] [--retention-days N] [--team-records=true|false] [--json]
                                           what the project's devices keep (a lead): shown, or changed
                                           with the flags given; devices apply it at their next sync
  user add NAME                            (admin; password from TESSERA_PASSWORD or the terminal)
  user grant USER PROJECT ROLE             role: lead, analyst or enumerator
  user revoke USER PROJECT                 take the user's role in the project away
  user disable NAME | user enable NAME     (admin) a disabled account's sessions end; it cannot sign in
  device code --project P [--team T] [--ttl 15m]   a single-use enrollment code for one device
  device list [--project P] | device revoke ID | device wipe ID
  hub code --project P [--team T] [--ttl 15m]   a single-use code enrolling a camp-office hub (surveyd --upstream URL --enroll CODE)
  bundle import FILE [--reply REPLY]       sync by file: merge a device's bundle, write its reply (a lead)
  audit verify                             fetch the audit trail (page by page) and check its hash chain
  audit list [--after SEQ] [--limit 100]   print audit entries as JSON lines (--limit 0: all)
  export --form FORM --format csv|jsonl|parquet|geojson --out DIR [--approved-only] [--labels LANG] [--since CURSOR]
  review ID STATE [--comment TEXT]         received, has_issues, approved or rejected (a lead)
  record erase ID --reason TEXT [--json]   erase a record on request (a lead): its answers and files leave
                                           the server now, every hub and device at its next sync; audited
  record assign ID (--team T | --device D [--follow-up] | --none) [--json]
                                           assign a record for a follow-up (a lead): devices receive their
                                           own interviews and what is assigned to them; --follow-up sends a
                                           device the sensitive answers too
  form check FILE.xlsx|.xls     check an XLSForm offline: every problem by sheet and row, or a summary
  form publish FORM [FILE|FOLDER ...] [--project P]
                                           publish a form version with its attachments (choices and data
                                           files; from a folder, those the form names; .xls kept as .xlsx)
  form list [--json]            the published forms, every version
  flags [--form ID] [--json]    finalized records the server flagged, with the reasons

Global flags:
`

// Main runs surveyctl.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("surveyctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", envOr("TESSERA_SERVER", "http://127.0.0.1:8080"), "server URL (env TESSERA_SERVER)")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	c := &cli{ctx: ctx, server: *server, stdout: stdout, stderr: stderr}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	switch fs.Arg(0) {
	case "form":
		return c.form(fs.Args()[1:])
	case "flags":
		return c.flags(fs.Args()[1:])
	case "login":
		return c.login(fs.Args()[1:])
	case "export":
		return c.export(fs.Args()[1:])
	case "review":
		return c.review(fs.Args()[1:])
	case "record":
		return c.record(fs.Args()[1:])
	case "logout":
		return c.logout()
	case "whoami":
		return c.whoami()
	case "project":
		return c.project(fs.Args()[1:])
	case "user":
		return c.user(fs.Args()[1:])
	case "device":
		return c.device(fs.Args()[1:])
	case "hub":
		return c.hub(fs.Args()[1:])
	case "audit":
		return c.audit(fs.Args()[1:])
	case "bundle":
		return c.bundle(fs.Args()[1:])
	case "help":
		fs.Usage()
		return nil
	}
	return fmt.Errorf("unknown command %q (see surveyctl --help)", fs.Arg(0))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type cli struct {
	ctx            context.Context
	server         string
	stdout, stderr io.Writer
}

func (c *cli) client() (*wire.Client, error) {
	var opts []wire.Option
	if tok := c.token(); tok != "" {
		opts = append(opts, wire.WithAuthorization("Bearer "+tok))
	}
	cl, err := wire.Dial(c.server, nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("--server %q: %w", c.server, err)
	}
	return cl, nil
}

// parse reads flags wherever they stand among positional arguments.
func (c *cli) parse(fs *flag.FlagSet, use string, args []string, npos int) ([]string, error) {
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprintf(c.stderr, "Usage: surveyctl %s\n", use); fs.PrintDefaults() }
	pos, err := cliutil.Parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != npos {
		fs.Usage()
		first, _, _ := strings.Cut(use, "\n")
		return nil, fmt.Errorf("%s: wrong number of arguments", first)
	}
	return pos, nil
}

func helpOK(err error) error { return cliutil.HelpOK(err) }

func (c *cli) form(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, "Usage: surveyctl form check|publish|list|xform ...\n")
		return errors.New("form: no subcommand given")
	}
	switch args[0] {
	case "check":
		return c.formCheck(args[1:])
	case "publish":
		return c.formPublish(args[1:])
	case "list":
		return c.formList(args[1:])
	case "xform":
		return c.formXForm(args[1:])
	case "--help", "-h", "help":
		fmt.Fprint(c.stderr, "Usage: surveyctl form check FILE.xlsx | form publish FILE.xlsx | form list [--json] | form xform FORM_ID[@VERSION]|FILE [--out FILE.xml]\n")
		return nil
	}
	return fmt.Errorf("form: unknown subcommand %q", args[0])
}

func readForm(path string) ([]byte, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	id := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return b, id, nil
}

func (c *cli) formCheck(args []string) error {
	fs := flag.NewFlagSet("form check", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	pos, err := c.parse(fs, "form check FILE.xlsx [--json]", args, 1)
	if err != nil {
		return helpOK(err)
	}
	b, id, err := readForm(pos[0])
	if err != nil {
		return err
	}
	f, err := forms.Parse(b, id)
	if err != nil {
		var ps forms.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(c.stdout, p)
			}
			return fmt.Errorf("%s: %d problem(s); nothing was published", pos[0], len(ps))
		}
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	s := summarize(f)
	if *asJSON {
		return writeJSON(c.stdout, s)
	}
	fmt.Fprintf(c.stdout, "%s: form %s, version %s, %q\n", pos[0], f.ID, f.Version, f.Title)
	fmt.Fprintf(c.stdout, "  %d questions, %d groups, %d repeats, %d choice lists\n", s.Questions, s.Groups, s.Repeats, s.ChoiceLists)
	if len(f.Languages) > 0 {
		fmt.Fprintf(c.stdout, "  languages: %s (default %s)\n", strings.Join(f.Languages, ", "), orNone(f.DefaultLanguage))
	}
	if len(s.Sensitive) > 0 {
		fmt.Fprintf(c.stdout, "  sensitive: %s\n", strings.Join(s.Sensitive, ", "))
	}
	fmt.Fprintln(c.stdout, "  no problems found")
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

type summary struct {
	FormID      string   `json:"form_id"`
	Version     string   `json:"version"`
	Title       string   `json:"title"`
	Languages   []string `json:"languages"`
	Questions   int      `json:"questions"`
	Groups      int      `json:"groups"`
	Repeats     int      `json:"repeats"`
	ChoiceLists int      `json:"choice_lists"`
	Sensitive   []string `json:"sensitive,omitempty"`
}

func summarize(f *forms.Form) summary {
	s := summary{FormID: f.ID, Version: f.Version, Title: f.Title, Languages: f.Languages, ChoiceLists: len(f.Choices)}
	f.Walk(func(q *forms.Question) {
		switch q.Kind {
		case forms.KGroup:
			s.Groups++
		case forms.KRepeat:
			s.Repeats++
		default:
			s.Questions++
		}
		if q.Sensitive {
			s.Sensitive = append(s.Sensitive, q.Name)
		}
	})
	return s
}

func writeJSON(w io.Writer, v any) error { return cliutil.WriteJSON(w, v) }

func (c *cli) formPublish(args []string) error {
	fs := flag.NewFlagSet("form publish", flag.ContinueOnError)
	project := fs.String("project", "", "project the form is for (devices receive their project's forms); empty: every project (admin)")
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: surveyctl form publish FORM.xlsx|.xls|FOLDER [FILE|FOLDER ...] [--project P]\n"+
			"The files after the form are its attachments (choices files, data files); from a folder, the ones the form names.\n")
		fs.PrintDefaults()
	}
	pos, err := cliutil.Parse(fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("form publish: name the form")
	}
	form, rest, err := formAndFolders(pos)
	if err != nil {
		return err
	}
	b, id, err := readForm(form)
	if err != nil {
		return err
	}
	files, err := attachments(b, id, rest)
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Forms().PublishForm(c.ctx, &tesserav1.PublishFormRequest{Xlsx: b, DefaultFormId: id, Project: *project, Files: wire.FilesTo(files)})
	if err != nil {
		return fmt.Errorf("publish %s: %w", form, err)
	}
	i := wire.InfoFrom(res.Form)
	if res.Created {
		fmt.Fprintf(c.stdout, "published %s (%q, %d questions, %d attachments)\n", i.Key(), i.Title, i.Questions, len(i.Files))
	} else {
		fmt.Fprintf(c.stdout, "%s was already published with this content; nothing changed\n", i.Key())
	}
	return nil
}

// formAndFolders picks the form: the first argument, or the one workbook
// of a folder given first (the folder then holds the attachments too).
func formAndFolders(pos []string) (form string, rest []string, err error) {
	st, err := os.Stat(pos[0])
	if err != nil || !st.IsDir() {
		return pos[0], pos[1:], err
	}
	var books []string
	for _, ext := range []string{"*.xlsx", "*.xls"} {
		m, _ := filepath.Glob(filepath.Join(pos[0], ext))
		books = append(books, m...)
	}
	if len(books) != 1 {
		return "", nil, fmt.Errorf("form publish: %s holds %d workbooks; name the form", pos[0], len(books))
	}
	return books[0], pos, nil
}

// attachments reads the files given after the form: files as named, and
// from folders those the form names.
func attachments(form []byte, id string, args []string) ([]forms.File, error) {
	var out []forms.File
	seen := map[string]bool{}
	add := func(path string) error {
		if seen[filepath.Base(path)] {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		seen[filepath.Base(path)] = true
		out = append(out, forms.File{Name: filepath.Base(path), Data: b})
		return nil
	}
	var named []forms.FileRef
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			if err := add(a); err != nil {
				return nil, err
			}
			continue
		}
		if named == nil {
			f, err := forms.Parse(form, id)
			if err != nil {
				return nil, err
			}
			named = append(f.Files(), forms.FileRef{})
		}
		for _, ref := range named {
			if p := filepath.Join(a, ref.Name); ref.Name != "" {
				if _, err := os.Stat(p); err == nil {
					if err := add(p); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return out, nil
}

func (c *cli) formList(args []string) error {
	fs := flag.NewFlagSet("form list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, "form list [--json]", args, 0); err != nil {
		return helpOK(err)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Forms().ListForms(c.ctx, &tesserav1.ListFormsRequest{})
	if err != nil {
		return fmt.Errorf("form list: %w", err)
	}
	list := []forms.Info{}
	for _, m := range res.Forms {
		list = append(list, wire.InfoFrom(m))
	}
	if *asJSON {
		return writeJSON(c.stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(c.stdout, "no forms published yet")
	}
	for _, i := range list {
		fmt.Fprintf(c.stdout, "%s\t%s\t%d questions\tpublished %s\n", i.Key(), i.Title, i.Questions,
			time.UnixMilli(i.PublishedAt).UTC().Format(time.RFC3339))
	}
	return nil
}

// formXForm writes a form's ODK XForm: a published version's (the bytes
// the server keeps for it) or, given a workbook file, the one Tessera
// would write for it.
func (c *cli) formXForm(args []string) error {
	fs := flag.NewFlagSet("form xform", flag.ContinueOnError)
	out := fs.String("out", "", "write the XForm to this file (default: standard output)")
	asJSON := fs.Bool("json", false, "print {form_id, version, md5, bytes} (with --out) instead of the XML")
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: surveyctl form xform FORM_ID[@VERSION]|FILE.xlsx [--out FILE.xml] [--json]\n"+
			"A published form's XForm as the server keeps it (newest version without @VERSION), or the XForm of a\n"+
			"workbook on disk, written without publishing it.\n")
		fs.PrintDefaults()
	}
	pos, err := c.parse(fs, "form xform FORM_ID[@VERSION]|FILE [--out FILE.xml] [--json]", args, 1)
	if err != nil {
		return helpOK(err)
	}
	var id, version string
	var x []byte
	if st, err := os.Stat(pos[0]); err == nil && !st.IsDir() {
		b, def, err := readForm(pos[0])
		if err != nil {
			return err
		}
		f, err := forms.Parse(b, def)
		if err != nil {
			var ps forms.Problems
			if errors.As(err, &ps) {
				for _, p := range ps {
					fmt.Fprintln(c.stderr, p)
				}
				return fmt.Errorf("%s: %d problem(s); no XForm written", pos[0], len(ps))
			}
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		if x, err = f.XForm(); err != nil {
			return err
		}
		id, version = f.ID, f.Version
	} else {
		id, version, _ = strings.Cut(pos[0], "@")
		cl, err := c.client()
		if err != nil {
			return err
		}
		defer cl.Close()
		res, err := cl.Forms().GetXForm(c.ctx, &tesserav1.GetXFormRequest{FormId: id, Version: version})
		if err != nil {
			return fmt.Errorf("form xform: %w", err)
		}
		x, version = res.Xform, res.GetForm().GetVersion()
	}
	sum := md5.Sum(x)
	if *out != "" {
		if err := os.WriteFile(*out, x, 0o644); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(c.stdout, map[string]any{"form_id": id, "version": version, "md5": hex.EncodeToString(sum[:]), "bytes": len(x)})
	}
	if *out == "" {
		_, err := c.stdout.Write(x)
		return err
	}
	fmt.Fprintf(c.stderr, "%s@%s: %d bytes, md5 %x, written to %s\n", id, version, len(x), sum, *out)
	return nil
}

func (c *cli) flags(args []string) error {
	fs := flag.NewFlagSet("flags", flag.ContinueOnError)
	form := fs.String("form", "", "only records of this form_id")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, "flags [--form ID] [--json]", args, 0); err != nil {
		return helpOK(err)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Forms().ListFlags(c.ctx, &tesserav1.ListFlagsRequest{FormId: *form})
	if err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	type flagJSON struct {
		Record     string            `json:"record"`
		Form       string            `json:"form"`
		Violations []forms.Violation `json:"violations"`
	}
	out := []flagJSON{}
	for _, r := range res.Records {
		var id syncengine.RecordID
		copy(id[:], r.Record)
		f := flagJSON{Record: id.String(), Form: r.Form}
		for _, v := range r.Violations {
			f.Violations = append(f.Violations, forms.Violation{Field: v.Field, Code: v.Code, Message: v.Message})
		}
		out = append(out, f)
	}
	if *asJSON {
		return writeJSON(c.stdout, out)
	}
	if len(out) == 0 {
		fmt.Fprintln(c.stdout, "no flagged records")
	}
	for _, f := range out {
		fmt.Fprintf(c.stdout, "%s  %s\n", f.Record, f.Form)
		for _, v := range f.Violations {
			fmt.Fprintf(c.stdout, "    %s [%s]: %s\n", v.Field, v.Code, v.Message)
		}
	}
	return nil
}
