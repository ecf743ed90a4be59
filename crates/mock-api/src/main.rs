//! `mock-api`: runs the mock server until killed. See `mock-api --help`.

use std::process::ExitCode;
use std::time::Duration;

use mock_api::{FaultKind, HeaderStyle, MockConfig, MockServer, RateLimitAlgorithm, RateLimitMode};

const HELP: &str = "\
mock-api: a mock REST API for connector-run's tests (serves on 127.0.0.1 until killed)

USAGE: mock-api [OPTIONS]

OPTIONS:
  --port N                 main listener port (default: any free port)
  --other-port N           other-origin listener port (default: any free port)
  --records N              size of the /gen/* dataset (default 250)
  --stripe-customers N     customers of /stripe/v1/customers (default 2345)
  --zendesk-tickets N      tickets of /api/v2/incremental/tickets/cursor.json (default 2345)
  --slack-channels N       conversations of /api/conversations.list (default 345)
  --github-repo OWNER/NAME=N
                           add (or resize) a repository of /repos/{owner}/{repo}/issues
                           (default acme/api=250, acme/web=120, acme/empty=0; repeatable)
  --db PATH                json-server database (default: the JSONPlaceholder fixture)
  --latency-ms N           delay before each data response
  --rate-limit N/s         rate limit, e.g. 10/s, 100/m, 5/2s, 3/500ms
  --rate-limit-algo A      fixed (default) | bucket
  --rate-limit-headers H   retry-after (default) | http-date | x-ratelimit | ietf | shopify | hubspot | none
  --github-403             refuse with 403 + X-RateLimit-Remaining: 0 instead of 429
  --fault-rate F           probability 0..1 of a fault per data request
  --fault-kinds LIST       comma-separated: 500,502,503,drop,slow[:ms],truncated,garbage,html
                           (default 500,502,503)
  --fail-first N           the first N data requests always fail
  --seed N                 fault random seed (default 42)
  --oauth-ttl-secs N       lifetime of issued OAuth tokens (default 3600)
  -h, --help               this help
";

fn parse_rate(s: &str) -> Result<(u32, Duration), String> {
    let (n, per) = s
        .split_once('/')
        .ok_or_else(|| format!("--rate-limit wants N/s, N/m, N/<duration>; got `{s}`"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("bad request count in `{s}`"))?;
    let per = per.trim();
    let split = per.find(|c: char| !c.is_ascii_digit()).unwrap_or(per.len());
    let (num, unit) = per.split_at(split);
    let num: u64 = if num.is_empty() {
        1
    } else {
        num.parse().map_err(|_| format!("bad window in `{s}`"))?
    };
    let window = match unit {
        "ms" => Duration::from_millis(num),
        "s" | "sec" => Duration::from_secs(num),
        "m" | "min" => Duration::from_secs(60 * num),
        "h" => Duration::from_secs(3600 * num),
        _ => return Err(format!("unknown window unit `{unit}` in `{s}`")),
    };
    Ok((n, window))
}

fn parse_args(args: Vec<String>) -> Result<Option<MockConfig>, String> {
    let mut cfg = MockConfig::default();
    let mut rate: Option<RateLimitMode> = None;
    let (mut algo, mut headers, mut github) = (
        RateLimitAlgorithm::FixedWindow,
        HeaderStyle::RetryAfter,
        false,
    );
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{flag}: `{v}` is not a valid number"))
        }
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => cfg.port = num(&flag, value()?)?,
            "--other-port" => cfg.other_port = num(&flag, value()?)?,
            "--records" => cfg.generated_records = num(&flag, value()?)?,
            "--stripe-customers" => cfg.stripe_customers = num(&flag, value()?)?,
            "--zendesk-tickets" => cfg.zendesk_tickets = num(&flag, value()?)?,
            "--slack-channels" => cfg.slack_channels = num(&flag, value()?)?,
            "--github-repo" => {
                let v = value()?;
                let (name, n) = v
                    .rsplit_once('=')
                    .filter(|(name, _)| name.contains('/'))
                    .ok_or_else(|| format!("--github-repo wants OWNER/NAME=N, got `{v}`"))?;
                cfg = cfg.github_repo(name, num(&flag, n.to_string())?);
            }
            "--db" => cfg.jsonplaceholder = Some(value()?.into()),
            "--latency-ms" => cfg.latency = Duration::from_millis(num(&flag, value()?)?),
            "--rate-limit" => {
                let (limit, window) = parse_rate(&value()?)?;
                rate = Some(RateLimitMode::new(limit, window));
            }
            "--rate-limit-algo" => {
                algo = match value()?.as_str() {
                    "fixed" | "fixed-window" => RateLimitAlgorithm::FixedWindow,
                    "bucket" | "token-bucket" => RateLimitAlgorithm::TokenBucket,
                    v => return Err(format!("--rate-limit-algo: unknown `{v}`")),
                }
            }
            "--rate-limit-headers" => {
                headers = match value()?.as_str() {
                    "none" => HeaderStyle::None,
                    "retry-after" => HeaderStyle::RetryAfter,
                    "http-date" => HeaderStyle::RetryAfterHttpDate,
                    "x-ratelimit" => HeaderStyle::XRateLimit,
                    "ietf" => HeaderStyle::Ietf,
                    "shopify" => HeaderStyle::Shopify,
                    "hubspot" => HeaderStyle::HubSpot,
                    v => return Err(format!("--rate-limit-headers: unknown `{v}`")),
                }
            }
            "--github-403" => github = true,
            "--fault-rate" => {
                let r: f64 = num(&flag, value()?)?;
                if !(0.0..=1.0).contains(&r) {
                    return Err("--fault-rate must be between 0 and 1".into());
                }
                cfg.faults.rate = r;
            }
            "--fault-kinds" => {
                cfg.faults.kinds = value()?
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| {
                        FaultKind::parse(s).ok_or_else(|| format!("--fault-kinds: unknown `{s}`"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--fail-first" => cfg.faults.fail_first = num(&flag, value()?)?,
            "--seed" => cfg.faults.seed = num(&flag, value()?)?,
            "--oauth-ttl-secs" => cfg.oauth_token_ttl = Duration::from_secs(num(&flag, value()?)?),
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    cfg.rate_limit = rate.map(|r| r.algorithm(algo).headers(headers).github_403(github));
    Ok(Some(cfg))
}

fn main() -> ExitCode {
    let cfg = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mock-api: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match MockServer::try_start(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mock-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.url());
    println!("other origin: {}", server.other_origin_url());
    server.wait();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_flags() {
        let cfg = parse_args(args(
            "--port 0 --latency-ms 5 --fault-rate 0.5 --fault-kinds 500,drop,slow:10 --rate-limit 3/2s --rate-limit-headers=ietf",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(cfg.latency, Duration::from_millis(5));
        assert_eq!(cfg.stripe_customers, 2345);
        let small = parse_args(args("--stripe-customers 7")).unwrap().unwrap();
        assert_eq!(small.stripe_customers, 7);
        let apis = parse_args(args(
            "--zendesk-tickets 9 --slack-channels=8 --github-repo acme/api=3 --github-repo x/y=2",
        ))
        .unwrap()
        .unwrap();
        assert_eq!((apis.zendesk_tickets, apis.slack_channels), (9, 8));
        assert_eq!(
            apis.github_repos,
            vec![
                ("acme/api".to_string(), 3),
                ("acme/web".to_string(), 120),
                ("acme/empty".to_string(), 0),
                ("x/y".to_string(), 2),
            ]
        );
        assert!(parse_args(args("--github-repo nope")).is_err());
        assert_eq!(
            cfg.faults.kinds,
            vec![
                FaultKind::Status500,
                FaultKind::DropConnection,
                FaultKind::Slow(Duration::from_millis(10))
            ]
        );
        let rl = cfg.rate_limit.unwrap();
        assert_eq!(
            (rl.limit, rl.window, rl.headers),
            (3, Duration::from_secs(2), HeaderStyle::Ietf)
        );
        assert!(parse_args(args("--bogus")).is_err());
        assert!(parse_args(args("--help")).unwrap().is_none());
        assert_eq!(parse_rate("10/s").unwrap(), (10, Duration::from_secs(1)));
        assert_eq!(parse_rate("100/m").unwrap(), (100, Duration::from_secs(60)));
    }
}
