//! Fuzz target: the text forms people paste and type — node ids, relay
//! addresses `ID@HOST:PORT`, ISTAT and CUP codes, document ids, roles — parse
//! without panicking, and what parses prints back to text that parses to the
//! same value (the printed form is also a fixed point). The same bytes as a
//! postcard body go through the codes' and document id's serde paths
//! (`try_from` on decode), which must refuse what the text parser refuses.
#![no_main]
use accordo_protocol::codes::{Cup, Istat, CUP_LEN};
use accordo_protocol::doc::DocId;
use accordo_protocol::identity::{NodeId, RelayAddr, Role, NODE_ID_HEX_LEN};
use accordo_protocol::registry::RegistryRole;
use libfuzzer_sys::fuzz_target;
use std::fmt::{Debug, Display};
use std::str::FromStr;

fn round_trip<T: FromStr + Display + PartialEq + Debug>(s: &str) -> Option<T> {
    let v = s.parse::<T>().ok()?;
    let printed = v.to_string();
    let again = printed.parse::<T>().ok();
    assert_eq!(again.as_ref(), Some(&v), "{printed:?} does not parse back");
    assert_eq!(again.map(|a| a.to_string()), Some(printed));
    Some(v)
}

fn serde_round_trip<T>(data: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + Debug + Display + FromStr,
{
    if let Ok(v) = postcard::from_bytes::<T>(data) {
        let bytes = postcard::to_stdvec(&v).expect("encodes");
        assert_eq!(postcard::from_bytes::<T>(&bytes).ok().as_ref(), Some(&v));
        assert!(
            v.to_string().parse::<T>().is_ok(),
            "serde accepted what text refuses"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    serde_round_trip::<Istat>(data);
    serde_round_trip::<Cup>(data);
    serde_round_trip::<DocId>(data);
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(id) = round_trip::<NodeId>(s) {
        assert_eq!(id.to_string().len(), NODE_ID_HEX_LEN);
        assert!(id.verifying_key().is_some());
    }
    if let Some(i) = round_trip::<Istat>(s) {
        assert_eq!(i.as_str(), s);
    }
    if let Some(c) = round_trip::<Cup>(s) {
        assert_eq!(c.as_str().len(), CUP_LEN);
        let _ = c.has_usual_pattern();
    }
    if let Some(d) = round_trip::<DocId>(s) {
        assert_eq!(d.canonical(), s);
    }
    if let Some(a) = round_trip::<RelayAddr>(s) {
        assert!(a.host_port.rsplit_once(':').is_some());
    }
    round_trip::<Role>(s);
    round_trip::<RegistryRole>(s);
});
