//! Claim checks shared by every JWT the server receives (client assertions, signed
//! authentication requests, login hint tokens, DPoP proofs).

use serde::Deserialize;

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, value: &str) -> bool {
        match self {
            Audience::One(a) => a == value,
            Audience::Many(all) => all.iter().any(|a| a == value),
        }
    }
}

/// The registered claims the server checks; numeric dates in seconds.
#[derive(Debug, Clone, Deserialize)]
pub struct RegisteredClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Audience>,
    pub exp: Option<f64>,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
    pub jti: Option<String>,
}

/// Checks `exp` (required), `nbf` and `iat` against `now_s` with `skew_s` leeway.
/// Returns a reason a client developer can act on.
pub fn check_times(claims: &RegisteredClaims, now_s: i64, skew_s: i64) -> Result<(), String> {
    let now = now_s as f64;
    let skew = skew_s as f64;
    let exp = claims.exp.ok_or("exp is required")?;
    if exp + skew <= now {
        return Err("the JWT has expired (exp)".into());
    }
    if claims.nbf.is_some_and(|nbf| nbf - skew > now) {
        return Err("the JWT is not yet valid (nbf)".into());
    }
    if claims.iat.is_some_and(|iat| iat - skew > now) {
        return Err("the JWT was issued in the future (iat)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: Option<f64>, nbf: Option<f64>, iat: Option<f64>) -> RegisteredClaims {
        RegisteredClaims {
            iss: None,
            sub: None,
            aud: None,
            exp,
            nbf,
            iat,
            jti: None,
        }
    }

    #[test]
    fn time_checks() {
        assert!(check_times(&claims(Some(100.0), None, None), 50, 0).is_ok());
        assert!(
            check_times(&claims(None, None, None), 50, 0)
                .unwrap_err()
                .contains("exp")
        );
        assert!(check_times(&claims(Some(100.0), None, None), 100, 0).is_err());
        assert!(check_times(&claims(Some(100.0), None, None), 100, 5).is_ok());
        assert!(
            check_times(&claims(Some(100.0), Some(60.0), None), 50, 0)
                .unwrap_err()
                .contains("nbf")
        );
        assert!(
            check_times(&claims(Some(100.0), None, Some(70.0)), 50, 5)
                .unwrap_err()
                .contains("iat")
        );
    }

    #[test]
    fn audience_forms() {
        let one: Audience = serde_json::from_str(r#""a""#).unwrap();
        let many: Audience = serde_json::from_str(r#"["b","a"]"#).unwrap();
        assert!(one.contains("a") && many.contains("a") && !many.contains("c"));
    }
}
