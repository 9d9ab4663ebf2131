//! Revocation status from IETF OAuth Token Status Lists: fetching behind a small trait,
//! verifying and decoding the `statuslist+jwt`, and caching it for its `ttl`.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::RwLock;

use countersign_jose::{UnverifiedJws, VerifyKey, b64url_decode};
use serde::Deserialize;

/// Where status lists come from. Implement it over your HTTP client, or enable the `http`
/// feature for [`HttpStatusSource`]. Errors are reported as `StatusUnavailable`.
pub trait StatusSource: Send + Sync {
    /// The `statuslist+jwt` published at `uri`.
    fn fetch(&self, uri: &str) -> Result<String, String>;
}

/// Largest decompressed list accepted (a 2^24-entry list of 8-bit statuses), so a hostile
/// list cannot exhaust memory.
const MAX_LIST_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Deserialize)]
struct ListClaims {
    sub: Option<String>,
    exp: Option<i64>,
    ttl: Option<i64>,
    status_list: Option<ListBody>,
}

#[derive(Deserialize)]
struct ListBody {
    bits: u8,
    lst: String,
}

/// A decoded status list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    pub bits: u8,
    pub bytes: Vec<u8>,
}

impl StatusList {
    /// The status of entry `idx` (0 = valid), or `None` when out of range.
    pub fn get(&self, idx: u64) -> Option<u8> {
        let per_byte = u64::from(8 / self.bits);
        let byte = self.bytes.get(usize::try_from(idx / per_byte).ok()?)?;
        let shift = (idx % per_byte) * u64::from(self.bits);
        let mask = ((1u16 << self.bits) - 1) as u8;
        Some((byte >> shift) & mask)
    }
}

/// Verifies a `statuslist+jwt` from `uri` with the issuer's keys and decodes it. Returns
/// the list and its `ttl`.
pub fn decode(
    token: &str,
    uri: &str,
    keys: &[(Option<String>, VerifyKey)],
    now: i64,
) -> Result<(StatusList, Option<i64>), String> {
    let jws = UnverifiedJws::parse(token).map_err(|e| e.to_string())?;
    if jws.header.typ.as_deref() != Some("statuslist+jwt") {
        return Err("not a statuslist+jwt".into());
    }
    let verified = keys
        .iter()
        .filter(|(kid, _)| jws.header.kid.is_none() || kid.as_deref() == jws.header.kid.as_deref())
        .any(|(_, key)| jws.verify_key(key).is_ok());
    if !verified {
        return Err("status list signature does not verify with the issuer's keys".into());
    }
    let claims: ListClaims = jws.insecure_claims().map_err(|e| e.to_string())?;
    if claims.sub.as_deref() != Some(uri) {
        return Err("status list sub does not match its URI".into());
    }
    if claims.exp.is_some_and(|exp| exp <= now) {
        return Err("status list has expired".into());
    }
    let body = claims.status_list.ok_or("status_list is missing")?;
    let packed = b64url_decode(&body.lst).ok_or("lst is not base64url")?;
    Ok((inflate(body.bits, &packed)?, claims.ttl))
}

/// Decompresses a list's `lst` (ZLIB) into a [`StatusList`], refusing lists larger than
/// `MAX_LIST_BYTES` before they are fully inflated.
pub(crate) fn inflate(bits: u8, packed: &[u8]) -> Result<StatusList, String> {
    if ![1, 2, 4, 8].contains(&bits) {
        return Err(format!("unsupported bits {bits}"));
    }
    let mut bytes = Vec::new();
    flate2::read::ZlibDecoder::new(packed)
        .take(MAX_LIST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("lst does not decompress: {e}"))?;
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Err("status list is too large".into());
    }
    Ok(StatusList { bits, bytes })
}

struct Cached {
    list: StatusList,
    fresh_until: i64,
}

/// Status lists by URI, kept until their `ttl` (capped by the verifier's setting) runs out.
#[derive(Default)]
pub struct StatusCache {
    lists: RwLock<HashMap<String, Cached>>,
}

impl StatusCache {
    pub fn fresh(&self, uri: &str, idx: u64, now: i64) -> Option<Option<u8>> {
        let lists = self.lists.read().ok()?;
        lists
            .get(uri)
            .filter(|c| c.fresh_until > now)
            .map(|c| c.list.get(idx))
    }

    pub fn store(&self, uri: &str, list: StatusList, fresh_until: i64) -> Option<()> {
        let mut lists = self.lists.write().ok()?;
        lists.insert(uri.to_owned(), Cached { list, fresh_until });
        Some(())
    }
}

/// Fetches status lists over HTTP(S) with a blocking client (feature `http`).
#[cfg(feature = "http")]
pub struct HttpStatusSource {
    agent: ureq::Agent,
}

#[cfg(feature = "http")]
impl Default for HttpStatusSource {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(5)))
            .build();
        Self {
            agent: config.into(),
        }
    }
}

#[cfg(feature = "http")]
impl StatusSource for HttpStatusSource {
    fn fetch(&self, uri: &str) -> Result<String, String> {
        let mut resp = self
            .agent
            .get(uri)
            .header("accept", "application/statuslist+jwt")
            .call()
            .map_err(|e| e.to_string())?;
        resp.body_mut()
            .with_config()
            .limit(4 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decompression_bomb_is_refused_without_inflating_it_all() {
        use std::io::Write as _;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 32 * 1024 * 1024]).unwrap();
        let packed = z.finish().unwrap();
        assert!(
            packed.len() < 100 * 1024,
            "32 MiB of zeros compresses to almost nothing"
        );
        assert_eq!(inflate(1, &packed).unwrap_err(), "status list is too large");
        assert!(inflate(3, &[]).is_err());
        assert!(inflate(1, b"not zlib").is_err());
    }

    #[test]
    fn entries_are_read_least_significant_first_for_every_width() {
        let one = StatusList {
            bits: 1,
            bytes: vec![0b1011_1001, 0b0000_0001],
        };
        let got: Vec<u8> = (0..9).filter_map(|i| one.get(i)).collect();
        assert_eq!(got, vec![1, 0, 0, 1, 1, 1, 0, 1, 1]);
        assert_eq!(one.get(16), None);
        // The draft's 2-bit example: statuses 1,2,0,3 packed into 0xC9.
        let two = StatusList {
            bits: 2,
            bytes: vec![0xC9],
        };
        assert_eq!(
            (0..4).filter_map(|i| two.get(i)).collect::<Vec<_>>(),
            vec![1, 2, 0, 3]
        );
    }
}

/// Fetches an issuer's JWK Set from `<issuer>/jwks.json` (feature `http`).
#[cfg(feature = "http")]
#[derive(Default)]
pub struct HttpKeySource {
    inner: HttpStatusSource,
}

#[cfg(feature = "http")]
impl crate::KeySource for HttpKeySource {
    fn fetch(&self, issuer: &str) -> Result<countersign_jose::JwkSet, String> {
        let uri = format!("{}/jwks.json", issuer.trim_end_matches('/'));
        let mut resp = self
            .inner
            .agent
            .get(&uri)
            .call()
            .map_err(|e| e.to_string())?;
        let body = resp
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&body).map_err(|e| e.to_string())
    }
}
