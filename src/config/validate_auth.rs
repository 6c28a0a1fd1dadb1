//! Validation of what protects a route: `auth`, `upstream_auth` and `cors`.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use url::Url;

use super::fields::{bounded, claim_values, duration, http_url};
use super::file::{
    AllowFile, AuthFile, BearerFile, ChainedFileOrName, CorsFile, OneOrMany, PassthroughFile,
    RateLimitFile, RolesFile, UpstreamAuthFile,
};
use super::{
    Allow, Auth, BearerAuth, ConfigError, ConsentSettings, IdentityHeaders, IssuedAuth, OAuthMode,
    Passthrough, Placement, ProviderConfig, RateLimit, Roles, ServiceConfig, Strategy,
    TokenExchange, UpstreamAuth,
};

/// Browser origins allowed when a route names none: Claude's web and desktop apps.
pub const DEFAULT_CORS_ORIGINS: [&str; 2] = ["https://claude.ai", "https://claude.com"];

/// The route's `auth`. `resource` is the route's public URL, the default audience.
pub fn auth(
    raw: AuthFile,
    at: &str,
    resource: &str,
    providers: &mut BTreeMap<String, ProviderConfig>,
    services: &BTreeMap<String, ServiceConfig>,
) -> Result<Auth, ConfigError> {
    let bearer = match raw {
        AuthFile::None => return Ok(Auth::None),
        AuthFile::Bearer(b) => b,
    };
    let BearerFile {
        provider,
        passthrough,
        chained,
        access_ttl,
        refresh_ttl,
        audience,
        scopes,
        allow,
        roles,
        rate_limit,
        oauth,
        consent,
    } = *bearer;
    let consent = ConsentSettings {
        remember: duration(
            consent.remember.as_deref(),
            Duration::ZERO,
            &format!("{at}.consent.remember"),
        )?,
        trusted_redirect_uris: consent.trusted_redirect_uris,
    };
    let rate_limit = rate_limit
        .map(|r| self::rate_limit(r, &format!("{at}.rate_limit")))
        .transpose()?;
    let provider = match (provider, passthrough.is_some(), chained.is_some()) {
        (Some(p), false, false) => p,
        (None, true, false) | (None, false, true) => {
            let identity_rules = [
                ("audience", audience.is_some()),
                ("scopes", !scopes.is_empty()),
                ("allow", allow != AllowFile::default()),
                ("roles", roles != RolesFile::default()),
                ("oauth", oauth.is_some()),
            ];
            if let Some((key, _)) = identity_rules.iter().find(|(_, set)| *set) {
                return Err(ConfigError::new(
                    format!("{at}.{key}"),
                    "needs a `provider`: passthrough and chained routes know no identity to check",
                ));
            }
            let lifetimes = (
                bounded(
                    access_ttl.as_deref(),
                    3600,
                    (1, 30 * 86_400),
                    &format!("{at}.access_ttl"),
                )?,
                bounded(
                    refresh_ttl.as_deref(),
                    30 * 86_400,
                    (1, 365 * 86_400),
                    &format!("{at}.refresh_ttl"),
                )?,
            );
            return issued(
                passthrough,
                chained,
                lifetimes,
                rate_limit,
                consent,
                at,
                services,
            );
        }
        _ => {
            return Err(ConfigError::new(
                at,
                "set exactly one of `provider`, `passthrough` and `chained`",
            ))
        }
    };
    if let Some(key) = [("access_ttl", &access_ttl), ("refresh_ttl", &refresh_ttl)]
        .iter()
        .find_map(|(k, v)| v.is_some().then_some(*k))
    {
        return Err(ConfigError::new(
            format!("{at}.{key}"),
            "is for passthrough and chained routes: the provider sets its tokens' lifetimes",
        ));
    }
    let Some(settings) = providers.get_mut(&provider) else {
        return Err(ConfigError::new(
            format!("{at}.provider"),
            format!("no provider named `{provider}` under `providers`"),
        ));
    };
    let oauth = match oauth.as_deref() {
        None | Some("direct") => OAuthMode::Direct,
        Some("broker") => OAuthMode::Broker,
        Some("redirect") => OAuthMode::Redirect,
        Some(other) => {
            return Err(ConfigError::new(
                format!("{at}.oauth"),
                format!("`{other}` is not one of direct, broker, redirect"),
            ))
        }
    };
    if oauth != OAuthMode::Direct {
        if settings.client_id.is_none() {
            return Err(ConfigError::new(
                format!("{at}.oauth"),
                format!("broker and redirect modes need the gateway's own client at the IdP: set providers.{provider}.client_id (and client_secret)"),
            ));
        }
        settings.brokers = true;
    }
    let idp_audience = settings.audience.clone();
    let audiences = match audience {
        Some(OneOrMany::One(a)) => vec![a],
        Some(OneOrMany::Many(list)) if !list.is_empty() => list,
        Some(OneOrMany::Many(_)) => {
            return Err(ConfigError::new(
                format!("{at}.audience"),
                "needs at least one value",
            ))
        }
        // What the gateway asks the IdP to put in `aud` when it brokers: its `audience`, and
        // the `resource` (RFC 8707) that IdPs put there.
        None if oauth != OAuthMode::Direct
            && (idp_audience.is_some() || settings.resource.is_some()) =>
        {
            idp_audience
                .into_iter()
                .chain(settings.resource.clone())
                .collect()
        }
        // A trailing-slash difference between the token's `aud` and the URL must not matter.
        None => vec![resource.to_string(), format!("{resource}/")],
    };
    let allow = Allow {
        subjects: allow.subjects,
        emails: allow.emails,
        groups: allow.groups,
        groups_claim: allow.groups_claim.unwrap_or_else(|| "groups".into()),
        claims: claim_values(allow.claims, &format!("{at}.allow.claims"))?,
    };
    let roles = Roles {
        from_scopes: roles.from_scopes.into_iter().collect(),
        from_claims: match roles.from_claim {
            None => Vec::new(),
            Some(OneOrMany::One(p)) => vec![p],
            Some(OneOrMany::Many(list)) => list,
        },
        required: roles.required,
    };
    if !roles.required.is_empty() && !roles.is_configured() {
        return Err(ConfigError::new(
            format!("{at}.roles.required"),
            "needs `from_scopes` or `from_claim` to say where roles come from",
        ));
    }
    let sign_in_scopes = if oauth == OAuthMode::Direct || !scopes.is_empty() {
        Vec::new()
    } else {
        let extra = settings.extra_scopes.iter();
        let usable: Vec<String> = extra.filter(|s| *s != "offline_access").cloned().collect();
        if usable.is_empty() {
            vec!["openid".to_string()]
        } else {
            usable
        }
    };
    Ok(Auth::Bearer(Box::new(BearerAuth {
        provider,
        audiences,
        scopes,
        sign_in_scopes,
        allow,
        roles,
        rate_limit,
        oauth,
        consent,
    })))
}

/// A passthrough or chained route: the gateway issues the tokens.
fn issued(
    passthrough: Option<PassthroughFile>,
    chained: Option<ChainedFileOrName>,
    (access_ttl, refresh_ttl): (Duration, Duration),
    rate_limit: Option<RateLimit>,
    consent: ConsentSettings,
    at: &str,
    services: &BTreeMap<String, ServiceConfig>,
) -> Result<Auth, ConfigError> {
    let (strategy, placement) = match (passthrough, chained) {
        (Some(p), _) => {
            let at = format!("{at}.passthrough");
            if p.prompt.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.prompt"),
                    "must say what to type",
                ));
            }
            let placement = placement(p.header, p.query, "{key}", &at)?;
            if p.raw && p.probe.is_none() {
                log::warn!(
                    "{at}: raw keys are handed out unchecked; a probe would refuse wrong ones"
                );
            }
            let probe = p
                .probe
                .map(|u| http_url(&u, &format!("{at}.probe")))
                .transpose()?;
            let strategy = Strategy::Passthrough(Passthrough {
                prompt: p.prompt,
                help: p.help,
                probe,
                raw: p.raw,
            });
            (strategy, placement)
        }
        (None, Some(ChainedFileOrName(c))) => {
            let at = format!("{at}.chained");
            if !services.contains_key(&c.service) {
                return Err(ConfigError::new(
                    format!("{at}.service"),
                    format!("no service named `{}` under `oauth_services`", c.service),
                ));
            }
            let placement = placement(c.header, c.query, "{token}", &at)?;
            (Strategy::Chained { service: c.service }, placement)
        }
        (None, None) => unreachable!("the caller matched one of them"),
    };
    Ok(Auth::Issued(Box::new(IssuedAuth {
        strategy,
        placement,
        access_ttl,
        refresh_ttl,
        rate_limit,
        consent,
    })))
}

/// `header: "Name: before{key}after"` or `query: name`; default `Authorization: Bearer …`.
fn placement(
    header: Option<String>,
    query: Option<String>,
    placeholder: &str,
    at: &str,
) -> Result<Placement, ConfigError> {
    match (header, query) {
        (Some(_), Some(_)) => Err(ConfigError::new(at, "set `header` or `query`, not both")),
        (None, Some(q)) if !q.is_empty() => Ok(Placement::Query(q)),
        (None, Some(_)) => Err(ConfigError::new(
            format!("{at}.query"),
            "names no parameter",
        )),
        (header, None) => {
            let header = header.unwrap_or_else(|| format!("Authorization: Bearer {placeholder}"));
            let key = format!("{at}.header");
            let bad = |why: &str| ConfigError::new(&key, format!("`{header}`: {why}"));
            let (name, template) = header
                .split_once(':')
                .ok_or_else(|| bad("is not `Name: value`"))?;
            let name = HeaderName::try_from(name.trim()).map_err(|_| bad("not a header name"))?;
            let (before, after) = template
                .trim_start()
                .split_once(placeholder)
                .ok_or_else(|| bad(&format!("the value has no {placeholder}")))?;
            if HeaderValue::try_from(format!("{before}x{after}")).is_err() {
                return Err(bad("not a valid header value"));
            }
            Ok(Placement::Header {
                name,
                before: before.to_string(),
                after: after.to_string(),
            })
        }
    }
}

/// `600/min` (also `/s`, `/sec`, `/second`, `/m`, `/minute`, `/h`, `/hour`), burst defaulting
/// to the limit.
fn rate_limit(raw: RateLimitFile, at: &str) -> Result<RateLimit, ConfigError> {
    let (rate, burst) = match raw {
        RateLimitFile::Rate(r) => (r, None),
        RateLimitFile::Full { rate, burst } => (rate, burst),
    };
    let bad = || {
        ConfigError::new(
            at,
            format!("`{rate}` is not a rate like 600/min (units: s, min, h)"),
        )
    };
    let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
    let limit: u32 = count.trim().parse().map_err(|_| bad())?;
    let window = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    let burst = burst.unwrap_or(limit);
    if limit == 0 || burst == 0 {
        return Err(ConfigError::new(at, "limit and burst must be at least 1"));
    }
    Ok(RateLimit {
        limit,
        window,
        burst,
    })
}

pub fn upstream_auth(
    raw: Option<UpstreamAuthFile>,
    auth: &Auth,
    at: &str,
    providers: &mut BTreeMap<String, ProviderConfig>,
) -> Result<UpstreamAuth, ConfigError> {
    let Some(raw) = raw else {
        return Ok(UpstreamAuth::default());
    };
    let bearer = match auth {
        Auth::Bearer(b) => Some(b),
        Auth::None | Auth::Issued(_) => None,
    };
    let needs_auth = |what: &str| {
        ConfigError::new(
            format!("{at}.{what}"),
            "needs an authenticated route (auth with a provider)",
        )
    };
    if bearer.is_none() && (raw.forward_token || raw.identity.is_some()) {
        return Err(needs_auth(if raw.forward_token {
            "forward_token"
        } else {
            "identity"
        }));
    }
    let headers = raw
        .headers
        .into_iter()
        .map(|(name, value)| {
            let key = format!("{at}.headers.{name}");
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| ConfigError::new(&key, "not a valid header name"))?;
            let mut value = HeaderValue::try_from(value)
                .map_err(|_| ConfigError::new(&key, "not a valid header value"))?;
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    let identity = raw
        .identity
        .map(|i| {
            let name = |v: Option<String>, default: &str, k: &str| {
                HeaderName::try_from(v.as_deref().unwrap_or(default)).map_err(|_| {
                    ConfigError::new(format!("{at}.identity.{k}"), "not a valid header name")
                })
            };
            Ok::<_, ConfigError>(IdentityHeaders {
                subject: name(i.subject, "x-auth-subject", "subject")?,
                email: name(i.email, "x-auth-email", "email")?,
                roles: name(i.roles, "x-auth-roles", "roles")?,
            })
        })
        .transpose()?;
    let token_exchange = match raw.token_exchange {
        None => None,
        Some(_) if raw.forward_token => {
            return Err(ConfigError::new(
                format!("{at}.token_exchange"),
                "cannot be combined with forward_token",
            ))
        }
        Some(te) => {
            let bearer = bearer.ok_or_else(|| needs_auth("token_exchange"))?;
            let provider = providers
                .get_mut(&bearer.provider)
                .expect("auth validation checked the provider");
            if provider.client_id.is_none() {
                return Err(ConfigError::new(
                    format!("{at}.token_exchange"),
                    format!(
                        "provider `{}` has no client_id to exchange tokens with",
                        bearer.provider
                    ),
                ));
            }
            provider.exchanges_tokens = true;
            Some(TokenExchange {
                audience: te.audience,
                resource: te.resource,
                scope: te.scope,
            })
        }
    };
    Ok(UpstreamAuth {
        forward_token: raw.forward_token,
        headers,
        identity,
        token_exchange,
    })
}

pub fn cors(raw: Option<CorsFile>, at: &str) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_CORS_ORIGINS.iter().map(|s| s.to_string()).collect());
    };
    raw.origins
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            let url = Url::parse(&o).ok().filter(|u| {
                u.host().is_some() && u.path() == "/" && u.query().is_none() && !o.ends_with('/')
            });
            match url {
                Some(_) => Ok(o.to_ascii_lowercase()),
                None => Err(ConfigError::new(
                    format!("{at}.origins[{i}]"),
                    format!("`{o}` is not an origin like https://app.example.com"),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Auth, Config, Placement, Strategy};
    use std::path::Path;

    const BASE: &str = "listen: 127.0.0.1:8080\nproviders:\n  idp:\n    issuer: https://idp.test/\n    client_id: gw\nroutes:\n  - prefix: /mcp\n    upstream: http://127.0.0.1:9/\n";

    fn load(route_tail: &str) -> Result<Config, String> {
        Config::from_yaml(&format!("{BASE}{route_tail}"), Path::new("."), &|_| None)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_protected_route_loads_with_defaults() {
        let c = load("    auth: { provider: idp, scopes: [mcp:tools], rate_limit: 600/min }\n")
            .unwrap();
        let Auth::Bearer(b) = &c.routes[0].auth else {
            panic!("bearer")
        };
        assert_eq!(
            b.audiences,
            ["http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/mcp/"]
        );
        let rl = b.rate_limit.as_ref().unwrap();
        assert_eq!((rl.limit, rl.burst, rl.window.as_secs()), (600, 600, 60));
        // Claude's origins, then the gateway's own (its listener under both names).
        assert_eq!(
            c.routes[0].cors_origins,
            [
                "https://claude.ai",
                "https://claude.com",
                "http://127.0.0.1:8080",
                "http://localhost:8080"
            ]
        );
        assert_eq!(
            c.local_hosts.as_deref(),
            Some(&["localhost", "127.0.0.1", "[::1]"].map(String::from)[..])
        );
        assert!(c.serves_host(Some("app.localhost")) && !c.serves_host(Some("evil.example")));
        let p = &c.providers["idp"];
        assert!(p.required_claims.is_empty(), "exp is required anyway");
        assert_eq!(p.leeway.as_secs(), 60);
        assert!(p.needs_discovery());
    }

    #[test]
    fn passthrough_and_chained_routes_load_and_say_what_is_wrong() {
        let c = load("    auth: { passthrough: { prompt: Key, header: \"X-Api-Key: k-{key}!\" }, access_ttl: 5m }\n").unwrap();
        let Auth::Issued(i) = &c.routes[0].auth else {
            panic!("issued")
        };
        let Placement::Header {
            name,
            before,
            after,
        } = &i.placement
        else {
            panic!("header")
        };
        assert_eq!(
            (name.as_str(), before.as_str(), after.as_str()),
            ("x-api-key", "k-", "!")
        );
        assert_eq!(
            (i.access_ttl.as_secs(), i.refresh_ttl.as_secs()),
            (300, 30 * 86_400)
        );
        let services = "oauth_services:\n  gh:\n    authorize_url: https://gh.test/authorize\n    token_url: https://gh.test/token\n    client_id: a\n    client_secret: b\n";
        let c = Config::from_yaml(
            &format!("{services}{BASE}    auth: {{ chained: gh }}\n"),
            Path::new("."),
            &|_| None,
        )
        .unwrap();
        let Auth::Issued(i) = &c.routes[0].auth else {
            panic!("issued")
        };
        assert_eq!(
            i.strategy,
            Strategy::Chained {
                service: "gh".into()
            }
        );
        assert_eq!(
            i.placement,
            Placement::Header {
                name: http::header::AUTHORIZATION,
                before: "Bearer ".into(),
                after: String::new()
            }
        );
        assert!(c.oauth_services["gh"].pkce);
        let cases = [
            ("    auth: { passthrough: { prompt: Key, header: \"X-Key: static\" } }\n", "routes[0].auth.passthrough.header: `X-Key: static`: the value has no {key}"),
            ("    auth: { passthrough: { prompt: Key, query: k, header: \"A: {key}\" } }\n", "routes[0].auth.passthrough: set `header` or `query`, not both"),
            ("    auth: { passthrough: { prompt: Key }, scopes: [a] }\n", "routes[0].auth.scopes: needs a `provider`"),
            ("    auth: { passthrough: { prompt: Key }, provider: idp }\n", "routes[0].auth: set exactly one of"),
            ("    auth: { passthrough: { prompt: Key }, access_ttl: 0s }\n", "routes[0].auth.access_ttl: must be between"),
            ("    auth: { provider: idp, refresh_ttl: 1d }\n", "routes[0].auth.refresh_ttl: is for passthrough and chained routes"),
            ("    auth: { passthrough: { prompt: Key, colour: red } }\n", "routes[0].auth.passthrough.colour: unknown field"),
            ("    auth: { chained: nope }\n", "routes[0].auth.chained.service: no service named `nope`"),
            ("    auth: { passthrough: { prompt: Key } }\n    upstream_auth: { forward_token: true }\n", "routes[0].upstream_auth.forward_token: needs an authenticated route"),
        ];
        for (tail, want) in cases {
            let err = load(tail).unwrap_err();
            assert!(err.starts_with(want), "want `{want}`, got `{err}`");
        }
    }

    #[test]
    fn scopes_for_the_idp_take_the_prefix_and_the_extras() {
        let yaml = BASE.replace(
            "    client_id: gw\n",
            "    client_id: gw\n    scope_prefix: api://app/\n    extra_scopes: [offline_access]\n",
        );
        let c = Config::from_yaml(&format!("{yaml}    auth: none\n"), Path::new("."), &|_| {
            None
        })
        .unwrap();
        let p = &c.providers["idp"];
        assert_eq!(
            p.scopes_for_idp("mcp.tools mcp.read"),
            "api://app/mcp.tools api://app/mcp.read offline_access"
        );
        assert_eq!(p.scopes_for_idp(""), "offline_access");
    }

    #[test]
    fn errors_name_the_key_path() {
        let cases = [
            ("    auth: { provider: nope }\n", "routes[0].auth.provider: no provider named `nope`"),
            ("    auth: { provider: idp, colour: red }\n", "routes[0].auth.colour: unknown field `colour`"),
            ("    auth: { provider: idp, rate_limit: ten/min }\n", "routes[0].auth.rate_limit: `ten/min` is not a rate"),
            ("    auth: { provider: idp, roles: { required: [admin] } }\n", "routes[0].auth.roles.required: needs `from_scopes` or `from_claim`"),
            ("    auth: none\n    upstream_auth: { identity: {} }\n", "routes[0].upstream_auth.identity: needs an authenticated route"),
            ("    auth: { provider: idp }\n    upstream_auth: { headers: { \"bad name\": x } }\n", "routes[0].upstream_auth.headers.bad name: not a valid header name"),
            ("    auth: { provider: idp }\n    upstream_auth: { forward_token: true, token_exchange: {} }\n", "routes[0].upstream_auth.token_exchange: cannot be combined with forward_token"),
            ("    auth: none\n    cors: { origins: [\"https://a.test/path\"] }\n", "routes[0].cors.origins[0]: `https://a.test/path` is not an origin"),
            // Keys that would do nothing are refused like any unknown key.
            ("    auth: { provider: idp }\n    upstream_auth: { token_exchange: { scope_prefix: x } }\n", "routes[0].upstream_auth.token_exchange.scope_prefix: unknown field `scope_prefix`"),
            ("    auth: { provider: idp }\n    upstream_auth: { token_exchange: { extra_scopes: [x] } }\n", "routes[0].upstream_auth.token_exchange.extra_scopes: unknown field `extra_scopes`"),
        ];
        for (tail, want) in cases {
            let err = load(tail).unwrap_err();
            assert!(err.starts_with(want), "want `{want}`, got `{err}`");
        }
        let bad_provider = BASE.replace("    client_id: gw\n", "    tokens: introspection\n");
        let err = Config::from_yaml(
            &format!("{bad_provider}    auth: none\n"),
            Path::new("."),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("providers.idp.client_id: is required to introspect"),
            "{err}"
        );
        let bad_issuer = BASE.replace("https://idp.test/", "idp.test");
        let err = Config::from_yaml(
            &format!("{bad_issuer}    auth: none\n"),
            Path::new("."),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("providers.idp.issuer: must be an http(s) URL"),
            "{err}"
        );
        let with_password = BASE.replace("https://idp.test/", "https://u:pw@idp.test/");
        let err = Config::from_yaml(
            &format!("{with_password}    auth: none\n"),
            Path::new("."),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("must not carry credentials") && !err.contains("pw"),
            "{err}"
        );
    }
}
