package server

import (
	"context"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/survey"
)

type authService struct{ s *Server }

func (h *authService) Login(ctx context.Context, req *tesserav1.LoginRequest) (*tesserav1.LoginResponse, error) {
	tok, err := h.s.auth.Login(ctx, req.User, req.Password)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "Login", err)
	}
	return &tesserav1.LoginResponse{Token: tok, User: req.User, ExpiresAt: h.s.rep.Now().Add(auth.SessionTTL).UnixMilli()}, nil
}

func (h *authService) Setup(ctx context.Context, req *tesserav1.SetupRequest) (*tesserav1.SetupResponse, error) {
	tok, user, err := h.s.auth.UseSetupToken(ctx, req.SetupToken, req.Password)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "Setup", err)
	}
	return &tesserav1.SetupResponse{Token: tok, User: user, ExpiresAt: h.s.rep.Now().Add(auth.SessionTTL).UnixMilli()}, nil
}

func (h *authService) Logout(ctx context.Context, _ *tesserav1.LogoutRequest) (*tesserav1.LogoutResponse, error) {
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		if tok, ok := cutPrefix(info.RequestHeader().Get("Authorization"), "Bearer "); ok {
			if err := h.s.auth.Logout(ctx, tok); err != nil {
				return nil, toConnect(ctx, h.s.log, "Logout", err)
			}
		}
	}
	return &tesserav1.LogoutResponse{}, nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

func (h *authService) Whoami(ctx context.Context, _ *tesserav1.WhoamiRequest) (*tesserav1.WhoamiResponse, error) {
	p := principal(ctx)
	res := &tesserav1.WhoamiResponse{}
	if p.User != nil {
		res.User, res.Admin, res.Roles = p.User.Name, p.User.Admin, map[string]string{}
		for proj, r := range p.User.Roles {
			res.Roles[proj] = string(r)
		}
	}
	if p.Device != nil {
		res.DeviceId, res.Project, res.Team = p.Device.ID, p.Device.Project, p.Device.Team
	}
	return res, nil
}

func (h *authService) Enroll(ctx context.Context, req *tesserav1.EnrollRequest) (*tesserav1.EnrollResponse, error) {
	var dev auth.Device
	var secret string
	var err error
	if h.s.relay != nil {
		dev, secret, err = h.s.relay.Enroll(ctx, req.Code, req.PublicKey, req.Signature)
	} else {
		dev, secret, err = h.s.auth.Enroll(ctx, req.Code, req.PublicKey, req.Signature)
	}
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "Enroll", err)
	}
	return &tesserav1.EnrollResponse{DeviceId: dev.ID, Credential: auth.DeviceCredential(dev.ID, secret), Project: dev.Project, Team: dev.Team}, nil
}

func (h *authService) HubDevices(ctx context.Context, req *tesserav1.HubDevicesRequest) (*tesserav1.HubDevicesResponse, error) {
	devs, err := h.s.svc.HubDevices(ctx, principal(ctx), req.Wiped, wire.HubDevicesFrom(req.Reported))
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "HubDevices", err)
	}
	return &tesserav1.HubDevicesResponse{Devices: wire.HubDevicesTo(devs)}, nil
}

func (h *authService) ReportWiped(ctx context.Context, _ *tesserav1.ReportWipedRequest) (*tesserav1.ReportWipedResponse, error) {
	if err := h.s.auth.Wiped(ctx, principal(ctx).Device.ID); err != nil {
		return nil, toConnect(ctx, h.s.log, "ReportWiped", err)
	}
	return &tesserav1.ReportWipedResponse{}, nil
}

func (h *authService) ReportHoldings(ctx context.Context, req *tesserav1.ReportHoldingsRequest) (*tesserav1.ReportHoldingsResponse, error) {
	hs := survey.Holdings{Records: int(req.Records), Unsent: int(req.Unsent), Removed: int(req.Removed)}
	if err := h.s.svc.ReportHoldings(ctx, principal(ctx), hs); err != nil {
		return nil, toConnect(ctx, h.s.log, "ReportHoldings", err)
	}
	return &tesserav1.ReportHoldingsResponse{}, nil
}

type adminService struct{ s *Server }

func (h *adminService) SetProjectPolicy(ctx context.Context, req *tesserav1.SetProjectPolicyRequest) (*tesserav1.SetProjectPolicyResponse, error) {
	pol := auth.DevicePolicy{DeleteAfterSend: req.GetPolicy().GetDeleteAfterSend(), RetentionDays: int(min(req.GetPolicy().GetRetentionDays(), 1<<20)),
		TeamRecords: req.GetPolicy().GetTeamRecords()}
	if err := h.s.svc.SetPolicy(ctx, principal(ctx), req.Project, pol); err != nil {
		return nil, toConnect(ctx, h.s.log, "SetProjectPolicy", err)
	}
	return &tesserav1.SetProjectPolicyResponse{}, nil
}

func (h *adminService) GetProjectPolicy(ctx context.Context, req *tesserav1.GetProjectPolicyRequest) (*tesserav1.GetProjectPolicyResponse, error) {
	pol, err := h.s.svc.Policy(ctx, principal(ctx), req.Project)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "GetProjectPolicy", err)
	}
	return &tesserav1.GetProjectPolicyResponse{Policy: &tesserav1.DevicePolicy{DeleteAfterSend: pol.DeleteAfterSend, RetentionDays: uint32(pol.RetentionDays), TeamRecords: pol.TeamRecords}}, nil
}

func actor(ctx context.Context) string { return survey.Actor(principal(ctx)) }

func (h *adminService) CreateProject(ctx context.Context, req *tesserav1.CreateProjectRequest) (*tesserav1.CreateProjectResponse, error) {
	if err := h.s.auth.CreateProject(ctx, actor(ctx), req.Name); err != nil {
		return nil, toConnect(ctx, h.s.log, "CreateProject", err)
	}
	return &tesserav1.CreateProjectResponse{}, nil
}

func (h *adminService) AddUser(ctx context.Context, req *tesserav1.AddUserRequest) (*tesserav1.AddUserResponse, error) {
	if err := h.s.auth.AddUser(ctx, actor(ctx), req.Name, req.Password); err != nil {
		return nil, toConnect(ctx, h.s.log, "AddUser", err)
	}
	return &tesserav1.AddUserResponse{}, nil
}

func (h *adminService) Grant(ctx context.Context, req *tesserav1.GrantRequest) (*tesserav1.GrantResponse, error) {
	if err := requireProject(ctx, req.Project, auth.Lead); err != nil {
		return nil, err
	}
	if err := h.s.auth.Grant(ctx, actor(ctx), req.User, req.Project, auth.Role(req.Role)); err != nil {
		return nil, toConnect(ctx, h.s.log, "Grant", err)
	}
	return &tesserav1.GrantResponse{}, nil
}

func (h *adminService) RevokeRole(ctx context.Context, req *tesserav1.RevokeRoleRequest) (*tesserav1.RevokeRoleResponse, error) {
	if err := requireProject(ctx, req.Project, auth.Lead); err != nil {
		return nil, err
	}
	if err := h.s.auth.RevokeRole(ctx, actor(ctx), req.User, req.Project); err != nil {
		return nil, toConnect(ctx, h.s.log, "RevokeRole", err)
	}
	return &tesserav1.RevokeRoleResponse{}, nil
}

func (h *adminService) SetUserDisabled(ctx context.Context, req *tesserav1.SetUserDisabledRequest) (*tesserav1.SetUserDisabledResponse, error) {
	if err := h.s.auth.SetDisabled(ctx, actor(ctx), req.User, req.Disabled); err != nil {
		return nil, toConnect(ctx, h.s.log, "SetUserDisabled", err)
	}
	return &tesserav1.SetUserDisabledResponse{}, nil
}

func (h *adminService) CreateEnrollmentCode(ctx context.Context, req *tesserav1.CreateEnrollmentCodeRequest) (*tesserav1.CreateEnrollmentCodeResponse, error) {
	ttl := time.Duration(req.TtlSeconds) * time.Second
	code, exp, err := h.s.svc.EnrollmentCode(ctx, principal(ctx), req.Project, req.Team, ttl, req.Hub)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "CreateEnrollmentCode", err)
	}
	return &tesserav1.CreateEnrollmentCodeResponse{Code: code, ExpiresAt: exp.UnixMilli()}, nil
}

func (h *adminService) CreateCollectDevice(ctx context.Context, req *tesserav1.CreateCollectDeviceRequest) (*tesserav1.CreateCollectDeviceResponse, error) {
	d, token, err := h.s.svc.CollectDevice(ctx, principal(ctx), req.Project, req.Team, req.Name)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "CreateCollectDevice", err)
	}
	return &tesserav1.CreateCollectDeviceResponse{DeviceId: d.ID, Token: token}, nil
}

func (h *adminService) ListDevices(ctx context.Context, req *tesserav1.ListDevicesRequest) (*tesserav1.ListDevicesResponse, error) {
	devs, err := h.s.svc.Devices(ctx, principal(ctx), req.Project)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "ListDevices", err)
	}
	res := &tesserav1.ListDevicesResponse{}
	for _, d := range devs {
		res.Devices = append(res.Devices, &tesserav1.DeviceInfo{Id: d.ID, Project: d.Project, Team: d.Team, EnrolledAt: d.Enrolled,
			Revoked: d.Revoked, Wipe: d.Wipe, WipedAt: d.Wiped, Hub: d.Hub, Upstream: d.Upstream, Collect: d.Collect, Name: d.Name,
			HoldsRecords: uint32(d.Holds.Records), HoldsUnsent: uint32(d.Holds.Unsent), RemovedRecords: uint32(d.Holds.Removed), HoldingsAt: d.Holds.At})
	}
	return res, nil
}

func (h *adminService) deviceAction(ctx context.Context, id string, revoke, wipe bool) error {
	if _, err := h.s.svc.DeviceAction(ctx, principal(ctx), id, revoke, wipe); err != nil {
		return toConnect(ctx, h.s.log, "DeviceAction", err)
	}
	return nil
}

func (h *adminService) RevokeDevice(ctx context.Context, req *tesserav1.RevokeDeviceRequest) (*tesserav1.RevokeDeviceResponse, error) {
	return &tesserav1.RevokeDeviceResponse{}, h.deviceAction(ctx, req.DeviceId, true, false)
}

func (h *adminService) WipeDevice(ctx context.Context, req *tesserav1.WipeDeviceRequest) (*tesserav1.WipeDeviceResponse, error) {
	return &tesserav1.WipeDeviceResponse{}, h.deviceAction(ctx, req.DeviceId, false, true)
}

func (h *adminService) AuditTrail(ctx context.Context, req *tesserav1.AuditTrailRequest) (*tesserav1.AuditTrailResponse, error) {
	entries, head, more, err := h.s.auth.AuditTrail(ctx, req.AfterSeq, int(min(req.Limit, auth.MaxAuditPage)))
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "AuditTrail", err)
	}
	res := &tesserav1.AuditTrailResponse{HeadSeq: head.Seq, HeadHash: head.Hash, More: more}
	for _, e := range entries {
		res.Entries = append(res.Entries, &tesserav1.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action,
			Detail: e.Detail, Prev: e.Prev, Hash: e.Hash})
	}
	return res, nil
}
