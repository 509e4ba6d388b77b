package server

import (
	"context"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/gen/tessera/v1/tesserav1connect"
)

// policy says who may call a procedure. It is the one table every RPC goes
// through (the interceptor below); handlers of project-scoped calls then
// check the project with requireProject.
type policy struct {
	public bool      // anyone, signed in or not
	device bool      // enrolled devices
	role   auth.Role // users holding at least this role in some project ("" = no users)
	open   bool      // anonymous callers too, when the server runs open (loopback, no --require-auth)
	// bulk calls each move one bounded chunk of a file a record names:
	// they are not counted against the request rate (a 200 MB video is
	// 800 of them), their bytes are bounded by the media limit.
	bulk bool
}

var policies = map[string]policy{
	tesserav1connect.AuthServiceLoginProcedure:       {public: true},
	tesserav1connect.AuthServiceSetupProcedure:       {public: true},
	tesserav1connect.AuthServiceEnrollProcedure:      {public: true},
	tesserav1connect.AuthServiceLogoutProcedure:      {role: auth.Enumerator},
	tesserav1connect.AuthServiceWhoamiProcedure:      {device: true, role: auth.Enumerator},
	tesserav1connect.AuthServiceReportWipedProcedure: {device: true},
	// A device's note of what it holds (the use case takes devices only).
	tesserav1connect.AuthServiceReportHoldingsProcedure: {device: true},
	tesserav1connect.AuthServiceHubDevicesProcedure:     {device: true},

	tesserav1connect.SyncServicePushProcedure: {device: true, role: auth.Admin, open: true},
	tesserav1connect.SyncServicePullProcedure: {device: true, role: auth.Admin, open: true},
	// Public keys; ImportBundle checks the device's project (leads only).
	tesserav1connect.SyncServiceBundleKeysProcedure:   {device: true, role: auth.Enumerator, open: true},
	tesserav1connect.SyncServiceImportBundleProcedure: {role: auth.Lead, open: true},
	// A hub's bundles up: leads of its project (checked in the use case).
	tesserav1connect.SyncServiceExportUpstreamBundleProcedure: {role: auth.Lead, open: true},
	tesserav1connect.SyncServiceImportUpstreamReplyProcedure:  {role: auth.Lead, open: true},

	tesserav1connect.FormServicePublishFormProcedure: {role: auth.Lead, open: true},
	tesserav1connect.FormServiceListFormsProcedure:   {device: true, role: auth.Enumerator, open: true},
	tesserav1connect.FormServiceGetFormProcedure:     {device: true, role: auth.Enumerator, open: true},
	tesserav1connect.FormServiceGetXFormProcedure:    {device: true, role: auth.Enumerator, open: true},
	tesserav1connect.FormServiceListFlagsProcedure:   {role: auth.Analyst, open: true},

	tesserav1connect.ExportServiceExportProcedure:    {role: auth.Analyst, open: true},
	tesserav1connect.ReviewServiceSetReviewProcedure: {role: auth.Lead},
	// A lead of the record's project (checked in the use case) or admin.
	tesserav1connect.ReviewServiceEraseRecordProcedure:  {role: auth.Lead},
	tesserav1connect.ReviewServiceAssignRecordProcedure: {role: auth.Lead},

	tesserav1connect.AdminServiceCreateProjectProcedure: {role: auth.Admin},
	// A lead of the project (checked in the use case).
	tesserav1connect.AdminServiceSetProjectPolicyProcedure:     {role: auth.Lead},
	tesserav1connect.AdminServiceGetProjectPolicyProcedure:     {role: auth.Lead},
	tesserav1connect.AdminServiceAddUserProcedure:              {role: auth.Admin},
	tesserav1connect.AdminServiceAuditTrailProcedure:           {role: auth.Admin},
	tesserav1connect.AdminServiceGrantProcedure:                {role: auth.Lead},
	tesserav1connect.AdminServiceRevokeRoleProcedure:           {role: auth.Lead},
	tesserav1connect.AdminServiceSetUserDisabledProcedure:      {role: auth.Admin},
	tesserav1connect.AdminServiceCreateEnrollmentCodeProcedure: {role: auth.Lead},
	tesserav1connect.AdminServiceCreateCollectDeviceProcedure:  {role: auth.Lead},
	tesserav1connect.AdminServiceListDevicesProcedure:          {role: auth.Lead},
	tesserav1connect.AdminServiceRevokeDeviceProcedure:         {role: auth.Lead},
	tesserav1connect.AdminServiceWipeDeviceProcedure:           {role: auth.Lead},

	tesserav1connect.MediaServiceStartUploadProcedure: {device: true, role: auth.Lead, open: true},
	tesserav1connect.MediaServicePutChunkProcedure:    {device: true, role: auth.Lead, open: true, bulk: true},
	tesserav1connect.MediaServiceGetMediaProcedure:    {device: true, role: auth.Analyst, open: true},
	tesserav1connect.MediaServiceListMediaProcedure:   {role: auth.Analyst, open: true},
}

// Reflection describes the API to tools; it reveals no data.
func policyFor(procedure string) (policy, bool) {
	if strings.HasPrefix(procedure, "/grpc.reflection.") {
		return policy{public: true}, true
	}
	p, ok := policies[procedure]
	return p, ok
}

type principalKey struct{}

// principal returns who is calling (zero for an anonymous caller of an
// open server or a public procedure).
func principal(ctx context.Context) auth.Principal {
	p, _ := ctx.Value(principalKey{}).(auth.Principal)
	return p
}

// authInterceptor authenticates the caller from its headers, before any
// payload is read, and applies the procedure's policy.
func (s *Server) authInterceptor(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		pol, ok := policyFor(spec.Procedure)
		if !ok {
			return connect.NewError(connect.CodePermissionDenied, "no access policy for this procedure")
		}
		if pol.public {
			return next(ctx, spec, stream)
		}
		var header string
		if info, ok := connect.CallInfoForServerContext(ctx); ok {
			header = info.RequestHeader().Get("Authorization")
		}
		if header == "" {
			if pol.open && !s.cfg.RequireAuth {
				return next(ctx, spec, stream)
			}
			return connect.NewError(connect.CodeUnauthenticated, "sign in (surveyctl login) or enroll this device (fieldapp init --enroll)")
		}
		var p auth.Principal
		switch {
		case strings.HasPrefix(header, "Bearer "):
			u, err := s.auth.Session(ctx, strings.TrimPrefix(header, "Bearer "))
			if err != nil {
				return toConnect(ctx, s.log, spec.Procedure, err)
			}
			p.User = u
		case strings.HasPrefix(header, "Device "):
			d, err := s.auth.AuthenticateDevice(ctx, strings.TrimPrefix(header, "Device "))
			if err != nil {
				return toConnect(ctx, s.log, spec.Procedure, err)
			}
			p.Device = d
		default:
			return connect.NewError(connect.CodeUnauthenticated, "unknown Authorization scheme (Bearer or Device)")
		}
		if p.Device != nil && !pol.device {
			return connect.NewError(connect.CodePermissionDenied, "devices may not call this")
		}
		if p.User != nil && (pol.role == "" || !p.CanAnywhere(pol.role)) {
			return connect.NewError(connect.CodePermissionDenied, "your role does not allow this")
		}
		if !pol.bulk && !s.limiter.allow(callerKey(p)) {
			return connect.NewError(connect.CodeResourceExhausted, "too many requests from this caller: slow down and retry")
		}
		return next(context.WithValue(ctx, principalKey{}, p), spec, stream)
	}
}

func callerKey(p auth.Principal) string {
	if p.Device != nil {
		return "device:" + p.Device.ID
	}
	if p.User != nil {
		return "user:" + p.User.Name
	}
	return ""
}

// limiter is a token bucket per signed-in caller: an abusive device gets
// ResourceExhausted while every other caller is served as usual. A sync is
// a handful of requests, so the default (20 a second, bursts of 100) never
// slows an honest device.
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate, burst float64) *limiter {
	return &limiter{rate: rate, burst: burst, buckets: map[string]*bucket{}}
}

func (l *limiter) allow(key string) bool {
	if key == "" || l == nil || l.rate <= 0 {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// requireProject checks the caller holds role in project (the auth
// service's own calls: grants).
func requireProject(ctx context.Context, project string, role auth.Role) error {
	if principal(ctx).Can(project, role) {
		return nil
	}
	return connect.NewError(connect.CodePermissionDenied, "your role does not allow this in project "+project)
}
