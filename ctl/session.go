package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/auth"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/survey"
)

// sessionFile keeps session tokens per server, readable by the owner only.
// TESSERA_TOKEN, when set, is used instead.
func sessionFile() string {
	if p := os.Getenv("TESSERA_SESSIONS"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "tessera", "sessions.json")
}

func loadSessions() map[string]string {
	m := map[string]string{}
	if b, err := os.ReadFile(sessionFile()); err == nil {
		json.Unmarshal(b, &m)
	}
	return m
}

func (c *cli) token() string {
	if t := os.Getenv("TESSERA_TOKEN"); t != "" {
		return t
	}
	return loadSessions()[c.server]
}

func (c *cli) saveToken(tok string) error {
	m := loadSessions()
	if tok == "" {
		delete(m, c.server)
	} else {
		m[c.server] = tok
	}
	p := sessionFile()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return os.WriteFile(p, b, 0o600)
}

// password reads a password from TESSERA_PASSWORD or a line of stdin.
func (c *cli) password(prompt string) (string, error) {
	if p := os.Getenv("TESSERA_PASSWORD"); p != "" {
		return p, nil
	}
	fmt.Fprint(c.stderr, prompt)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password given (set TESSERA_PASSWORD or type it)")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (c *cli) login(args []string) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	user := fs.String("user", "admin", "user name")
	setup := fs.String("setup-token", "", "one-time setup token (first start, or surveyd admin token): sets the password")
	if _, err := c.parse(fs, "login [--user NAME] [--setup-token TOKEN]", args, 0); err != nil {
		return helpOK(err)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	var tok, who string
	if *setup != "" {
		pw, err := c.password("new password (10 characters or more): ")
		if err != nil {
			return err
		}
		res, err := cl.Auth().Setup(c.ctx, &tesserav1.SetupRequest{SetupToken: *setup, Password: pw})
		if err != nil {
			return fmt.Errorf("login: %w", err)
		}
		tok, who = res.Token, res.User
	} else {
		pw, err := c.password("password for " + *user + ": ")
		if err != nil {
			return err
		}
		res, err := cl.Auth().Login(c.ctx, &tesserav1.LoginRequest{User: *user, Password: pw})
		if err != nil {
			return fmt.Errorf("login: %w", err)
		}
		tok, who = res.Token, res.User
	}
	if err := c.saveToken(tok); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "signed in to %s as %s\n", c.server, who)
	return nil
}

func (c *cli) logout() error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	_, _ = cl.Auth().Logout(c.ctx, &tesserav1.LogoutRequest{})
	return c.saveToken("")
}

func (c *cli) whoami() error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Auth().Whoami(c.ctx, &tesserav1.WhoamiRequest{})
	if err != nil {
		return fmt.Errorf("whoami: %w", err)
	}
	return writeJSON(c.stdout, res)
}

func (c *cli) project(args []string) error {
	if len(args) > 0 && args[0] == "policy" {
		return c.projectPolicy(args[1:])
	}
	if len(args) != 2 || args[0] != "create" {
		return errors.New("usage: surveyctl project create NAME | project policy NAME [flags]")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := cl.Admin().CreateProject(c.ctx, &tesserav1.CreateProjectRequest{Name: args[1]}); err != nil {
		return fmt.Errorf("project create: %w", err)
	}
	fmt.Fprintf(c.stdout, "project %s created\n", args[1])
	return nil
}

// projectPolicy shows a project's device policy, or changes the parts
// whose flags are given (the rest stays as it is).
func (c *cli) projectPolicy(args []string) error {
	fs := flag.NewFlagSet("project policy", flag.ContinueOnError)
	das := fs.Bool("delete-after-send", false, "once the server acknowledged a finalized interview, its answers and files leave the device")
	days := fs.Int("retention-days", 0, "records whose last change is older leave devices once the server holds them (0: kept; never at the server)")
	team := fs.Bool("team-records", false, "every device receives its whole team's records, sensitive answers included (off: its own interviews and those assigned to it or its team: surveyctl record assign)")
	asJSON := fs.Bool("json", false, `print {"project","delete_after_send","retention_days","team_records"}`)
	pos, err := c.parse(fs, "project policy NAME [--delete-after-send=true|false] [--retention-days N] [--team-records=true|false] [--json]\n\n"+
		"Shows what the project's devices keep and receive; the flags given change only what they name.", args, 1)
	if err != nil {
		return helpOK(err)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Admin().GetProjectPolicy(c.ctx, &tesserav1.GetProjectPolicyRequest{Project: pos[0]})
	if err != nil {
		return fmt.Errorf("project policy: %w", err)
	}
	pol := &tesserav1.DevicePolicy{DeleteAfterSend: res.GetPolicy().GetDeleteAfterSend(), RetentionDays: res.GetPolicy().GetRetentionDays(), TeamRecords: res.GetPolicy().GetTeamRecords()}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["retention-days"] {
		if *days < 0 || *days > auth.MaxRetentionDays {
			return fmt.Errorf("project policy: --retention-days %d: 0 to %d", *days, auth.MaxRetentionDays)
		}
		pol.RetentionDays = uint32(*days)
	}
	if given["delete-after-send"] {
		pol.DeleteAfterSend = *das
	}
	if given["team-records"] {
		pol.TeamRecords = *team
	}
	if given["retention-days"] || given["delete-after-send"] || given["team-records"] {
		if _, err := cl.Admin().SetProjectPolicy(c.ctx, &tesserav1.SetProjectPolicyRequest{Project: pos[0], Policy: pol}); err != nil {
			return fmt.Errorf("project policy: %w", err)
		}
	}
	if *asJSON {
		return writeJSON(c.stdout, map[string]any{"project": pos[0], "delete_after_send": pol.DeleteAfterSend, "retention_days": pol.RetentionDays, "team_records": pol.TeamRecords})
	}
	fmt.Fprintf(c.stdout, "project %s: %s\n", pos[0], auth.DevicePolicy{DeleteAfterSend: pol.DeleteAfterSend, RetentionDays: int(pol.RetentionDays), TeamRecords: pol.TeamRecords})
	return nil
}

func (c *cli) user(args []string) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	switch {
	case len(args) == 2 && args[0] == "add":
		pw, err := c.password("password for " + args[1] + " (10 characters or more): ")
		if err != nil {
			return err
		}
		if _, err := cl.Admin().AddUser(c.ctx, &tesserav1.AddUserRequest{Name: args[1], Password: pw}); err != nil {
			return fmt.Errorf("user add: %w", err)
		}
		fmt.Fprintf(c.stdout, "user %s added\n", args[1])
	case len(args) == 4 && args[0] == "grant":
		if _, err := cl.Admin().Grant(c.ctx, &tesserav1.GrantRequest{User: args[1], Project: args[2], Role: args[3]}); err != nil {
			return fmt.Errorf("user grant: %w", err)
		}
		fmt.Fprintf(c.stdout, "%s is %s in %s\n", args[1], args[3], args[2])
	case len(args) == 3 && args[0] == "revoke":
		if _, err := cl.Admin().RevokeRole(c.ctx, &tesserav1.RevokeRoleRequest{User: args[1], Project: args[2]}); err != nil {
			return fmt.Errorf("user revoke: %w", err)
		}
		fmt.Fprintf(c.stdout, "%s has no role in %s any more\n", args[1], args[2])
	case len(args) == 2 && (args[0] == "disable" || args[0] == "enable"):
		if _, err := cl.Admin().SetUserDisabled(c.ctx, &tesserav1.SetUserDisabledRequest{User: args[1], Disabled: args[0] == "disable"}); err != nil {
			return fmt.Errorf("user %s: %w", args[0], err)
		}
		fmt.Fprintf(c.stdout, "%s is %sd\n", args[1], args[0])
	default:
		return errors.New("usage: surveyctl user add NAME | user grant USER PROJECT ROLE | user revoke USER PROJECT | user disable NAME | user enable NAME")
	}
	return nil
}

// hub mints a code enrolling a camp-office hub: the hub relays its
// devices' writes within the code's project and team.
func (c *cli) hub(args []string) error {
	if len(args) == 0 || args[0] != "code" {
		return errors.New("usage: surveyctl hub code --project P [--team T] [--ttl 15m]")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	return c.code(cl, "hub", args[1:], "surveyd --data DIR --upstream URL --enroll")
}

// code mints a single-use enrollment code for a device or (what "hub") a
// hub and prints it, with the command that uses it.
func (c *cli) code(cl *wire.Client, what string, args []string, use string) error {
	fs := flag.NewFlagSet(what+" code", flag.ContinueOnError)
	project := fs.String("project", "", "project the "+what+" joins")
	team := fs.String("team", "", "team (the "+what+" then sees only its team's records)")
	ttl := fs.Duration("ttl", 15*time.Minute, "how long the code stays valid")
	if _, err := c.parse(fs, what+" code --project P [--team T] [--ttl 15m]", args, 0); err != nil {
		return helpOK(err)
	}
	if *project == "" {
		return fmt.Errorf("%s code: --project is required", what)
	}
	res, err := cl.Admin().CreateEnrollmentCode(c.ctx, &tesserav1.CreateEnrollmentCodeRequest{Project: *project, Team: *team,
		TtlSeconds: uint32(ttl.Seconds()), Hub: what == "hub"})
	if err != nil {
		return fmt.Errorf("%s code: %w", what, err)
	}
	fmt.Fprintln(c.stdout, res.Code)
	fmt.Fprintf(c.stderr, "single use, valid until %s: %s %s\n", time.UnixMilli(res.ExpiresAt).UTC().Format(time.RFC3339), use, res.Code)
	return nil
}

func (c *cli) device(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: surveyctl device code|collect|list|revoke|wipe ...")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	switch args[0] {
	case "code":
		return c.code(cl, "device", args[1:], "fieldapp init --server URL --enroll")
	case "collect":
		return c.collectDevice(cl, args[1:])
	case "list":
		fs := flag.NewFlagSet("device list", flag.ContinueOnError)
		project := fs.String("project", "", "project (an admin may leave it out)")
		if _, err := c.parse(fs, "device list [--project P]", args[1:], 0); err != nil {
			return helpOK(err)
		}
		res, err := cl.Admin().ListDevices(c.ctx, &tesserav1.ListDevicesRequest{Project: *project})
		if err != nil {
			return fmt.Errorf("device list: %w", err)
		}
		return writeJSON(c.stdout, res.Devices)
	case "revoke", "wipe":
		if len(args) != 2 {
			return fmt.Errorf("usage: surveyctl device %s ID", args[0])
		}
		if args[0] == "revoke" {
			_, err = cl.Admin().RevokeDevice(c.ctx, &tesserav1.RevokeDeviceRequest{DeviceId: args[1]})
		} else {
			_, err = cl.Admin().WipeDevice(c.ctx, &tesserav1.WipeDeviceRequest{DeviceId: args[1]})
		}
		if err != nil {
			return fmt.Errorf("device %s: %w", args[0], err)
		}
		fmt.Fprintf(c.stdout, "device %s: %s\n", args[1], map[string]string{"revoke": "revoked; refused from its next call",
			"wipe": "flagged; on its next sync it sends what it has, then erases its store"}[args[0]])
	default:
		return fmt.Errorf("device: unknown subcommand %q", args[0])
	}
	return nil
}

func (c *cli) audit(args []string) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "list") {
		return errors.New("usage: surveyctl audit verify | audit list [--after SEQ] [--limit N]")
	}
	fs := flag.NewFlagSet("audit "+args[0], flag.ContinueOnError)
	after := fs.Uint64("after", 0, "list: entries after this sequence number")
	limit := fs.Int("limit", 100, "list: most entries to print (0: all)")
	if _, err := c.parse(fs, "audit "+args[0]+" [flags]", args[1:], 0); err != nil {
		return helpOK(err)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	if args[0] == "list" {
		return c.auditList(cl, *after, *limit)
	}
	// The trail comes in pages; each is checked as it arrives.
	var v auth.TrailVerifier
	var from uint64
	for {
		res, err := cl.Admin().AuditTrail(context.WithoutCancel(c.ctx), &tesserav1.AuditTrailRequest{AfterSeq: from})
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		entries := auditEntries(res)
		if err := v.Add(entries); err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		if !res.More || len(entries) == 0 {
			n, err := v.End(auth.AuditHead{Seq: res.HeadSeq, Hash: res.HeadHash})
			if err != nil {
				return fmt.Errorf("audit verify: %w", err)
			}
			fmt.Fprintf(c.stdout, "audit trail verified: %d entries, head %s\n", n, short(res.HeadHash))
			return nil
		}
		from = entries[len(entries)-1].Seq
	}
}

// auditList prints entries as JSON lines, a page at a time.
func (c *cli) auditList(cl *wire.Client, after uint64, limit int) error {
	enc := json.NewEncoder(c.stdout)
	for printed := 0; limit == 0 || printed < limit; {
		page := uint32(auth.MaxAuditPage)
		if limit > 0 {
			page = uint32(min(limit-printed, auth.MaxAuditPage))
		}
		res, err := cl.Admin().AuditTrail(c.ctx, &tesserav1.AuditTrailRequest{AfterSeq: after, Limit: page})
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		for _, e := range auditEntries(res) {
			if err := enc.Encode(e); err != nil {
				return err
			}
			after = e.Seq
			printed++
		}
		if !res.More || len(res.Entries) == 0 {
			break
		}
	}
	return nil
}

func auditEntries(res *tesserav1.AuditTrailResponse) []auth.AuditEntry {
	entries := make([]auth.AuditEntry, len(res.Entries))
	for i, e := range res.Entries {
		entries[i] = auth.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action, Detail: e.Detail, Prev: e.Prev, Hash: e.Hash}
	}
	return entries
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func (c *cli) review(args []string) error {
	fs := flag.NewFlagSet("review", flag.ContinueOnError)
	comment := fs.String("comment", "", "why")
	pos, err := c.parse(fs, "review ID STATE [--comment TEXT]", args, 2)
	if err != nil {
		return helpOK(err)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := cl.Review().SetReview(c.ctx, &tesserav1.SetReviewRequest{Record: pos[0], State: pos[1], Comment: *comment}); err != nil {
		return fmt.Errorf("review: %w", err)
	}
	fmt.Fprintf(c.stdout, "record %s: %s\n", pos[0], pos[1])
	return nil
}

func (c *cli) record(args []string) error {
	if len(args) > 0 && args[0] == "assign" {
		return c.recordAssign(args[1:])
	}
	if len(args) == 0 || args[0] != "erase" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
			fmt.Fprintln(c.stderr, "Usage: surveyctl record erase ID --reason TEXT [--json]")
			fmt.Fprintln(c.stderr, "       surveyctl record assign ID (--team T | --device D [--follow-up] | --none) [--json]")
			return nil
		}
		return errors.New("record: say what to do: record erase ID --reason TEXT")
	}
	fs := flag.NewFlagSet("record erase", flag.ContinueOnError)
	reason := fs.String("reason", "", "why the record is erased (required; kept in the audit trail)")
	asJSON := fs.Bool("json", false, `print {"record":..., "erased":true, "already_erased":...}`)
	pos, err := c.parse(fs, "record erase ID --reason TEXT [--json]\n\n"+
		"Erases the record's answers and files from the server's store (every version it keeps,\n"+
		"the change log, flags) now, and from every hub and device at its next sync. An edit made\n"+
		"offline before the erasure arrived does not bring them back. Erasing twice is harmless.\n"+
		"Needs the lead role on the record's project. The audit trail keeps who, when and why,\n"+
		"never what the record held.", args[1:], 1)
	if err != nil {
		return helpOK(err)
	}
	if strings.TrimSpace(*reason) == "" {
		return errors.New("record erase: give a reason with --reason (it is kept in the audit trail)")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.Review().EraseRecord(c.ctx, &tesserav1.EraseRecordRequest{Record: pos[0], Reason: *reason})
	if err != nil {
		return fmt.Errorf("record erase: %w", err)
	}
	if *asJSON {
		return writeJSON(c.stdout, map[string]any{"record": pos[0], "erased": true, "already_erased": resp.AlreadyErased})
	}
	if resp.AlreadyErased {
		fmt.Fprintf(c.stdout, "record %s: already erased\n", pos[0])
		return nil
	}
	fmt.Fprintf(c.stdout, "record %s: erased (hubs and devices drop it at their next sync)\n", pos[0])
	return nil
}

// recordAssign assigns a record for a follow-up visit.
func (c *cli) recordAssign(args []string) error {
	fs := flag.NewFlagSet("record assign", flag.ContinueOnError)
	team := fs.String("team", "", "assign to every device of this team (they receive the record without its sensitive answers)")
	device := fs.String("device", "", "assign to this device (an id from surveyctl device list)")
	follow := fs.Bool("follow-up", false, "with --device: the device also receives the record's sensitive answers")
	none := fs.Bool("none", false, "assign the record to nobody (devices keep what they received)")
	asJSON := fs.Bool("json", false, `print {"record","team","device","follow_up","changed"}`)
	pos, err := c.parse(fs, "record assign ID (--team T | --device D [--follow-up] | --none) [--json]\n\n"+
		"Devices receive their own interviews and the records assigned to them or their team, not\n"+
		"the whole team's (unless the project's policy says --team-records). An assigned record\n"+
		"reaches the devices at their next sync, with its earlier changes. Sensitive answers of a\n"+
		"record a device did not create reach it only with --follow-up. Needs the lead role on the\n"+
		"record's project; audited.", args, 1)
	if err != nil {
		return helpOK(err)
	}
	named := 0
	for _, b := range []bool{*team != "", *device != "", *none} {
		if b {
			named++
		}
	}
	if named != 1 {
		return errors.New("record assign: give one of --team, --device or --none")
	}
	if *follow && *device == "" {
		return errors.New("record assign: --follow-up goes with --device")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Review().AssignRecord(c.ctx, &tesserav1.AssignRecordRequest{Record: pos[0], Team: *team, Device: *device, FollowUp: *follow})
	if err != nil {
		return fmt.Errorf("record assign: %w", err)
	}
	if *asJSON {
		return writeJSON(c.stdout, map[string]any{"record": pos[0], "team": *team, "device": *device, "follow_up": *follow, "changed": res.Changed})
	}
	to := survey.Assignment{Team: *team, Device: *device, FollowUp: *follow}
	if !res.Changed {
		fmt.Fprintf(c.stdout, "record %s: already assigned to %s\n", pos[0], to)
		return nil
	}
	fmt.Fprintf(c.stdout, "record %s: assigned to %s (devices receive it at their next sync)\n", pos[0], to)
	return nil
}

// collectDevice registers a collecting device for ODK Collect: the first
// line printed is the server URL to type into Collect; --qr writes the
// settings QR code Collect scans (base64 of zlib'd JSON with general,
// admin and project, as Collect reads it).
func (c *cli) collectDevice(cl *wire.Client, args []string) error {
	fs := flag.NewFlagSet("device collect", flag.ContinueOnError)
	project := fs.String("project", "", "project the device collects for (required)")
	team := fs.String("team", "", "team within the project")
	name := fs.String("name", "", "a name to tell the device apart in lists")
	qrFile := fs.String("qr", "", "write Collect's settings QR code to this PNG file")
	if _, err := c.parse(fs, "device collect --project P [--team T] [--name NAME] [--qr FILE.png]", args, 0); err != nil {
		return helpOK(err)
	}
	if *project == "" {
		return errors.New("device collect: --project is required")
	}
	res, err := cl.Admin().CreateCollectDevice(c.ctx, &tesserav1.CreateCollectDeviceRequest{Project: *project, Team: *team, Name: *name})
	if err != nil {
		return fmt.Errorf("device collect: %w", err)
	}
	u := strings.TrimSuffix(c.server, "/") + "/key/" + res.Token
	fmt.Fprintln(c.stdout, u)
	fmt.Fprintf(c.stdout, "device %s: type the URL above into Collect (Settings > Project management > Manually), or scan the QR code; it is shown only now\n", res.DeviceId)
	if *qrFile != "" {
		png, err := survey.CollectQR(u, *project, *name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*qrFile, png, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "settings QR code written to %s\n", *qrFile)
	}
	return nil
}
