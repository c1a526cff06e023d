//! One `run` per command: call the coordinator through [`Ctx`], print the answer.
//!
//! Exit codes: 0 success; 1 the command ran but some inputs were rejected (or, offline, the
//! check failed); 2 error.

use std::process::ExitCode;

use anyhow::{Context, Result};
use debcover_proto::v1 as pb;

use crate::args::{
    BuildCommand, BuiltWithArgs, CampaignCommand, CampaignSpecArgs, Cli, Command, IngestCommand, NodeCommand, QueueArgs,
    RebuildCommand, TokenCommand, VerifyArgs, VerifyCommand,
};
use crate::client::{self, campaign as cc, output, rebuild as cr};
use crate::config::{self, FileConfig};
use crate::ctx::{Ctx, call};
use crate::outln;

/// Run the command `cli` names.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let file = FileConfig::load(cli.config.as_deref())?;
    client::set_ca_cert(config::resolve_ca_cert(cli.ca_cert.clone(), &file));
    let server = config::resolve_server(cli.server.clone(), &file);
    if !matches!(cli.command, Command::Serve(_)) {
        let data_dir = std::env::var_os("DEBCOVER_DATA_DIR").map(std::path::PathBuf::from);
        let admin_file = config::admin_token_file(cli.admin_token_file.clone(), data_dir.as_deref(), &file);
        client::set_credential(config::credential(cli.token_file.clone(), &admin_file, &file)?);
    }
    let ctx = Ctx {
        file,
        server,
        json: cli.json,
        admin_token_file: cli.admin_token_file.clone(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let ok = ExitCode::SUCCESS;
    match cli.command {
        #[cfg(feature = "serve")]
        Command::Serve(a) => crate::serve::run(a, &ctx).await.map(|()| ok),
        #[cfg(not(feature = "serve"))]
        Command::Serve(_) => Err(anyhow::anyhow!(
            "this debcover was built without the server (--no-default-features); build it with the default \
             features, or run `debcover serve` from a full build"
        )),
        Command::Ingest(IngestCommand::Buildinfo { inputs, batch_size }) => ingest_buildinfo(&ctx, &inputs, batch_size).await,
        Command::Ingest(IngestCommand::Archive { suite, arch, kind, inputs }) => {
            ingest_archive(&ctx, &suite, arch.as_deref(), kind.as_deref(), &inputs).await
        }
        Command::BuiltWith(a) => built_with(&ctx, a).await.map(|()| ok),
        Command::Build(BuildCommand::Show { source, version, arch }) => build_show(&ctx, source, version, arch).await.map(|()| ok),
        Command::Build(BuildCommand::Get { id }) => build_get(&ctx, id).await.map(|()| ok),
        Command::Build(BuildCommand::History { source, version }) => build_history(&ctx, source, version).await.map(|()| ok),
        Command::Status => status(&ctx).await.map(|()| ok),
        Command::Campaign(c) => campaign(&ctx, c).await.map(|()| ok),
        Command::Node(c) => node(&ctx, c).await.map(|()| ok),
        Command::Token(c) => token(&ctx, c).await.map(|()| ok),
        Command::Audit { limit } => audit(&ctx, limit).await.map(|()| ok),
        Command::Rebuild(c) => rebuild(&ctx, c).await.map(|()| ok),
        Command::Verify(a) => verify(&ctx, a).await,
        Command::Keys { coordinator_pem } => client::attest::keys(&ctx.server, ctx.json, coordinator_pem).await.map(|()| ok),
        Command::Attestations(a) => client::attest::attestations(&ctx.server, &a, ctx.json).await.map(|()| ok),
        Command::Queue(a) => queue(&ctx, a).await.map(|()| ok),
        Command::InspectDeb(a) => Ok(if client::inspect::run(&a, ctx.json)? { ok } else { ExitCode::from(1) }),
    }
}

/// 0, or 1 when some inputs were rejected.
fn rejected_if(any: bool) -> ExitCode {
    if any { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// `debcover ingest buildinfo`.
async fn ingest_buildinfo(ctx: &Ctx, inputs: &[String], batch_size: usize) -> Result<ExitCode> {
    let opts = client::buildinfo::Options { batch_files: batch_size, progress: ctx.progress, ..Default::default() };
    let summary = client::buildinfo::ingest(&ctx.server, inputs, &opts).await?;
    ctx.print(&summary, || {
        for r in &summary.rejected {
            eprintln!("rejected: {}", r.reason);
        }
        outln!("{} ingested, {} already known, {} rejected", summary.ingested, summary.already_known, summary.rejected.len());
    })?;
    Ok(rejected_if(!summary.rejected.is_empty()))
}

/// `debcover ingest archive`.
async fn ingest_archive(ctx: &Ctx, suite: &str, arch: Option<&str>, kind: Option<&str>, inputs: &[String]) -> Result<ExitCode> {
    let mut results = Vec::new();
    let mut failed = false;
    for input in inputs {
        let outcome = match client::archive::kind_of(input, kind) {
            Ok(k) => client::archive::ingest_one(&ctx.server, suite, arch, k, input, ctx.progress).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(o) => {
                if !ctx.json {
                    let kind = if o.kind == pb::IndexKind::Sources as i32 { "Sources" } else { "Packages" };
                    let scope = if o.architecture.is_empty() { o.suite.clone() } else { format!("{}/{}", o.suite, o.architecture) };
                    let linked = if o.kind == pb::IndexKind::Packages as i32 { format!(", {} linked to builds", o.linked) } else { String::new() };
                    outln!("{input}: {kind} for {scope}: {} entries, {} added, {} removed{linked}", o.entries, o.added, o.removed);
                }
                results.push(serde_json::json!({
                    "input": input, "suite": o.suite, "architecture": o.architecture,
                    "entries": o.entries, "added": o.added, "removed": o.removed,
                    "linked": o.linked, "sha256": o.sha256,
                }));
            }
            // The credential is refused: every other index would be too.
            Err(e) if client::is_refused_credential(&e) => return Err(e),
            Err(e) => {
                failed = true;
                if !ctx.json {
                    eprintln!("rejected: {e:#}");
                }
                results.push(serde_json::json!({ "input": input, "error": format!("{e:#}") }));
            }
        }
    }
    if ctx.json {
        output::print_json(&results)?;
    }
    Ok(rejected_if(failed))
}

/// `debcover built-with`.
async fn built_with(ctx: &Ctx, a: BuiltWithArgs) -> Result<()> {
    let request = pb::BuiltWithRequest {
        package: a.package.clone(),
        before: a.before.unwrap_or_default(),
        suite: a.suite.unwrap_or_default(),
        architecture: a.arch.unwrap_or_default(),
    };
    let r = client::built_with(client::channel(&ctx.server).await?, request).await?;
    ctx.print(&output::BuiltWithView::from(&r), || output::print_built_with(&r, &a.package))
}

/// `debcover build show`.
async fn build_show(ctx: &Ctx, source: String, version: Option<String>, arch: Option<String>) -> Result<()> {
    let request = pb::ShowBuildsRequest { source, version: version.unwrap_or_default(), architecture: arch.unwrap_or_default() };
    let r = call("build show", ctx.coordinator().await?.show_builds(request)).await?;
    let views: Vec<_> = r.builds.iter().map(output::DetailView::from).collect();
    ctx.print(&views, || output::print_builds(&r))
}

/// `debcover build get`: the stored text, byte for byte.
async fn build_get(ctx: &Ctx, id: String) -> Result<()> {
    use std::io::Write;
    let r = call("build get", ctx.coordinator().await?.get_buildinfo(pb::GetBuildinfoRequest { id })).await?;
    std::io::stdout().write_all(&r.content)?;
    Ok(())
}

/// `debcover build history`.
async fn build_history(ctx: &Ctx, source: String, version: Option<String>) -> Result<()> {
    let request = pb::JobHistoryRequest { source, version: version.unwrap_or_default() };
    let r = call("build history", ctx.open_admin().await?.job_history(request)).await?;
    ctx.print(&cr::history_json(&r), || cr::print_history(&r))
}

/// `debcover status`.
async fn status(ctx: &Ctx) -> Result<()> {
    let s = client::status(&ctx.server).await?;
    let json = serde_json::json!({
        "version": s.version, "backend": s.backend, "builds": s.builds,
        "dependency_entries": s.dependency_entries,
        "interned_packages": s.interned_packages, "binaries": s.binaries,
        "suites": s.suites,
    });
    ctx.print(&json, || {
        outln!("debcover {} on {} at {}", s.version, s.backend, ctx.server);
        outln!("  builds:             {}", s.builds);
        outln!("  dependency entries: {}", s.dependency_entries);
        outln!("  interned packages:  {}", s.interned_packages);
        outln!("  archive binaries:   {}", s.binaries);
        outln!("  suites:             {}", if s.suites.is_empty() { "none".into() } else { s.suites.join(", ") });
    })
}

/// `Name <email>` for changelog trailers: the flag, else the Debian packaging variables.
fn changed_by(flag: Option<String>) -> String {
    flag.or_else(|| {
        let name = std::env::var("DEBFULLNAME").ok()?;
        let mail = std::env::var("DEBEMAIL").ok()?;
        Some(format!("{name} <{mail}>"))
    })
    .unwrap_or_default()
}

/// `debcover campaign ...`.
async fn campaign(ctx: &Ctx, cmd: CampaignCommand) -> Result<()> {
    match cmd {
        CampaignCommand::Plan(a) => campaign_spec(ctx, a, false).await,
        CampaignCommand::Create(a) => campaign_spec(ctx, a, true).await,
        CampaignCommand::List => {
            let r = call("campaign list", ctx.campaigns().await?.list_campaigns(pb::ListCampaignsRequest {})).await?;
            ctx.print(&cc::list_view(&r), || cc::print_list(&r))
        }
        CampaignCommand::Status { id } => {
            let request = pb::CampaignRequest { id, ..Default::default() };
            let r = call("campaign status", ctx.campaigns().await?.campaign_status(request)).await?;
            let v = cc::status_view(&r)?;
            ctx.print(&v, || cc::print_status(&v))
        }
        CampaignCommand::Events { id } => {
            let request = pb::CampaignRequest { id, ..Default::default() };
            let r = call("campaign events", ctx.campaigns().await?.campaign_events(request)).await?;
            let v = cc::events_view(&r);
            ctx.print(&v, || cc::print_events(&v))
        }
        CampaignCommand::Export { id, format, changed_by: who, items } => {
            let format = if ctx.json { cc::PlanFormat::Json } else { format };
            let detail = cc::items_to_ask(format, items.detail, items.item_offset, items.item_limit)?;
            let request = pb::CampaignRequest {
                id,
                changed_by: changed_by(who),
                items: detail.clone(),
                item_offset: items.item_offset,
                item_limit: items.item_limit,
            };
            let r = call("campaign export", ctx.campaigns().await?.export_campaign(request)).await?;
            cc::print_plan(&cc::plan_view(r, &detail)?, format)
        }
    }
}

/// `debcover campaign plan|create`.
async fn campaign_spec(ctx: &Ctx, a: CampaignSpecArgs, save: bool) -> Result<()> {
    let format = if ctx.json { cc::PlanFormat::Json } else { a.format };
    let detail = cc::items_to_ask(format, a.items.detail, a.items.item_offset, a.items.item_limit)?;
    let spec = pb::CampaignSpec {
        library: a.library,
        fixed_version: a.fixed,
        suites: a.suites,
        architectures: a.arches,
        mode: a.mode,
        title: a.title,
        advisories: a.advisories,
        max_depth: a.max_depth,
        changed_by: changed_by(a.changed_by),
        propagate: a.propagate,
        items: detail.clone(),
        item_offset: a.items.item_offset,
        item_limit: a.items.item_limit,
    };
    let mut c = ctx.campaigns().await?;
    let r = if save {
        call("campaign create", c.create_campaign(spec)).await?
    } else {
        call("campaign plan", c.plan_campaign(spec)).await?
    };
    cc::print_plan(&cc::plan_view(r, &detail)?, format)
}

/// `debcover node ...` (admin).
async fn node(ctx: &Ctx, cmd: NodeCommand) -> Result<()> {
    match cmd {
        NodeCommand::Add { operator, name } => {
            let r = call("node add", ctx.admin().await?.add_node(pb::AddNodeRequest { operator, name })).await?;
            let n = r.node.unwrap_or_default();
            let mut json = cr::node_json(&n);
            json["token"] = serde_json::Value::String(r.token.clone());
            ctx.print(&json, || {
                outln!("node {} of operator {} added. Its token (shown only now; keep it secret):", n.name, n.operator);
                outln!("{}", r.token);
            })
        }
        NodeCommand::List => {
            let r = call("node list", ctx.admin().await?.list_nodes(pb::ListNodesRequest {})).await?;
            ctx.print(&r.nodes.iter().map(cr::node_json).collect::<Vec<_>>(), || cr::print_nodes(&r))
        }
        NodeCommand::Revoke { operator, name } => {
            let request = pb::RevokeNodeRequest { operator: operator.clone(), name: name.clone() };
            call("node revoke", ctx.admin().await?.revoke_node(request)).await?;
            if ctx.json {
                outln!("{}", serde_json::json!({"operator": operator, "name": name, "revoked": true}));
            } else {
                outln!("node {name} of operator {operator} revoked; its leases went back to the queue");
            }
            Ok(())
        }
    }
}

/// `debcover rebuild request` (admin).
async fn rebuild(ctx: &Ctx, cmd: RebuildCommand) -> Result<()> {
    let (source, version, arch, backend, tags, priority) = match cmd {
        RebuildCommand::Request { source, version, arch, backend, tags, priority } => {
            (source, version, arch, backend, tags, priority)
        }
        RebuildCommand::Release { source, version, job } => {
            let request = pb::ReleaseParkedRequest {
                source: source.unwrap_or_default(),
                version: version.unwrap_or_default(),
                job_id: job.unwrap_or(0),
            };
            let r = call("rebuild release", ctx.admin().await?.release_parked(request)).await?;
            return ctx.print(&serde_json::json!({ "released": r.released }), || {
                if r.released.is_empty() {
                    outln!("no parked job released (none matched, or its build is queued already)");
                } else {
                    outln!("{} parked job(s) queued again with fresh budgets: {:?}", r.released.len(), r.released);
                }
            });
        }
    };
    let request = pb::RebuildRequest {
        source,
        version: version.unwrap_or_default(),
        architecture: arch.unwrap_or_default(),
        backend: backend.unwrap_or_default(),
        tags,
        priority,
    };
    let r = call("rebuild request", ctx.admin().await?.request_rebuild(request)).await?;
    ctx.print(&cr::enqueue_json(&r), || cr::print_enqueue(&r))
}

/// `debcover verify DIR` (offline) or `debcover verify suite SUITE` (admin).
async fn verify(ctx: &Ctx, a: VerifyArgs) -> Result<ExitCode> {
    match a.command {
        None => {
            let dir =
                a.dir.context("name an export directory (`debcover verify DIR --trust-key PEM`) or `verify suite SUITE`")?;
            Ok(if client::attest::verify_dir(&dir, &a.offline, ctx.json)? { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Some(VerifyCommand::Suite { suite, arches }) => {
            let request = pb::VerifySuiteRequest { suite, architectures: arches };
            let r = call("verify suite", ctx.admin().await?.verify_suite(request)).await?;
            ctx.print(&cr::enqueue_json(&r), || cr::print_enqueue(&r))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `debcover queue`.
async fn queue(ctx: &Ctx, a: QueueArgs) -> Result<()> {
    let r = call("queue", ctx.open_admin().await?.queue(pb::QueueRequest { states: a.states, limit: a.limit })).await?;
    ctx.print(&cr::queue_json(&r), || cr::print_queue(&r))
}

fn token_json(t: &pb::ApiToken) -> serde_json::Value {
    serde_json::json!({
        "name": t.name, "role": t.role, "created_at": t.created_at,
        "last_used_at": (t.last_used_at != 0).then_some(t.last_used_at),
        "revoked_at": (t.revoked_at != 0).then_some(t.revoked_at),
    })
}

async fn token(ctx: &Ctx, c: TokenCommand) -> Result<()> {
    let mut client = ctx.access().await?;
    match c {
        TokenCommand::Add { name, role } => {
            let r = call("token add", client.add_token(pb::AddTokenRequest { name, role })).await?;
            let t = r.token.unwrap_or_default();
            ctx.print(&serde_json::json!({ "token": token_json(&t), "secret": r.secret }), || {
                outln!("{}", r.secret);
                eprintln!(
                    "token {} (role {}) made; the line above is its secret, shown only now: store it in a file \
                     readable only by its user and pass it with --token-file FILE (or DEBCOVER_TOKEN)",
                    t.name, t.role
                );
            })
        }
        TokenCommand::List => {
            let r = call("token list", client.list_tokens(pb::ListTokensRequest {})).await?;
            let json: Vec<_> = r.tokens.iter().map(token_json).collect();
            ctx.print(&json, || {
                outln!("{:<24} {:<9} {:<20} {:<20} REVOKED", "NAME", "ROLE", "CREATED", "LAST USED");
                for t in &r.tokens {
                    outln!(
                        "{:<24} {:<9} {:<20} {:<20} {}",
                        t.name,
                        t.role,
                        cr::time(t.created_at),
                        cr::time(t.last_used_at),
                        cr::time(t.revoked_at)
                    );
                }
            })
        }
        TokenCommand::Revoke { name } => {
            call("token revoke", client.revoke_token(pb::RevokeTokenRequest { name: name.clone() })).await?;
            ctx.print(&serde_json::json!({ "revoked": name }), || outln!("token {name} revoked"))
        }
    }
}

async fn audit(ctx: &Ctx, limit: u32) -> Result<()> {
    let r = call("audit", ctx.access().await?.audit_log(pb::AuditLogRequest { limit })).await?;
    let json: Vec<_> = r
        .entries
        .iter()
        .map(|e| serde_json::json!({ "at": e.at, "actor": e.actor, "role": e.role, "action": e.action, "subject": e.subject }))
        .collect();
    ctx.print(&json, || {
        for e in &r.entries {
            outln!("{}  {:<28} {:<9} {:<18} {}", cr::time(e.at), e.actor, e.role, e.action, e.subject);
        }
    })
}
