//! What the public pages and open-data files are rendered from: the public
//! part of the query store, read once per change of the data (the heads of
//! every document) and day, and held while it is current. Every request
//! only compares the heads (one small query) and renders from the held
//! snapshot; the figures are the monitoring report over the published data,
//! so they carry its stamp (`computed_from`).

use crate::replica::{Replica, ReplicaError};
use crate::views::public::{heads_key, public_read};
use crate::web::Failure;
use accordo_domain::indicator::{IndicatorData, IndicatorDef};
use accordo_domain::model::{Date, Project};
use accordo_domain::plan::{Kind, PlanItem};
use accordo_domain::portal::zone_of;
use accordo_domain::report::{self, Money, Report};
use axum::body::Bytes;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

/// A zona omogenea with the published projects that count in it.
pub struct ZoneRow {
    pub code: String,
    pub name: String,
    pub money: Money,
}

/// The public data at one moment.
pub struct Snapshot {
    /// Changes with the data and the day (an ETag's base).
    pub key: String,
    pub as_of: Date,
    /// The figures of the published data, stamped.
    pub report: Report,
    /// Published projects (public form) with their comune, in list order.
    pub projects: Vec<(String, Project)>,
    /// The zone each entry of `projects` counts in, same order.
    pub project_zones: Vec<Option<String>>,
    pub zones: Vec<ZoneRow>,
    pub axes: Vec<PlanItem>,
    pub objectives: Vec<PlanItem>,
    pub actions: Vec<PlanItem>,
    pub periods: Vec<PlanItem>,
    /// The sustainability report's texts (plan items of kind `text`).
    pub texts: Vec<PlanItem>,
    pub catalog: Vec<IndicatorDef>,
    pub indicator_data: Vec<(String, BTreeMap<String, IndicatorData>)>,
    /// When the newest change of any document was made (author's clock).
    pub last_change_ms: Option<u64>,
    /// Open-data files made from this snapshot, by file name: each is
    /// built once per change of the data (at most the datasets × formats).
    pub files: Mutex<HashMap<String, Bytes>>,
}

impl Snapshot {
    /// The bytes of open-data file `name`, built by `make` the first time
    /// it is asked of this snapshot. Two first requests may both build it;
    /// the bytes are the same.
    pub fn file(
        &self,
        name: &str,
        make: impl FnOnce() -> Result<Vec<u8>, Failure>,
    ) -> Result<Bytes, Failure> {
        // Invariant: poisoned only after a panic while held, a bug.
        if let Some(b) = self.files.lock().expect("files mutex").get(name) {
            return Ok(b.clone());
        }
        let bytes = Bytes::from(make()?);
        self.files
            .lock()
            .expect("files mutex")
            .insert(name.to_owned(), bytes.clone());
        Ok(bytes)
    }
}

impl Snapshot {
    /// The projects of one comune.
    pub fn of_comune<'a>(&'a self, comune: &'a str) -> impl Iterator<Item = &'a Project> + 'a {
        self.projects
            .iter()
            .filter(move |(c, _)| c == comune)
            .map(|(_, p)| p)
    }

    /// The sustainability report of the published data for `from..=to`.
    pub fn sustainability(
        &self,
        from: u16,
        to: u16,
    ) -> accordo_domain::sustainability::Sustainability {
        use accordo_domain::report::Input;
        let mut comuni: Vec<(String, Vec<Project>)> = Vec::new();
        for (c, p) in &self.projects {
            match comuni.last_mut() {
                Some((last, ps)) if last == c => ps.push(p.clone()),
                _ => comuni.push((c.clone(), vec![p.clone()])),
            }
        }
        let input = Input {
            as_of: self.as_of,
            period: None,
            comuni,
            catalog: self.catalog.clone(),
            indicator_data: self.indicator_data.clone(),
            documents: self.report.computed_from.documents.clone(),
        };
        let plan = accordo_domain::sustainability::Plan {
            objectives: &self.objectives,
            actions: &self.actions,
            texts: &self.texts,
        };
        accordo_domain::sustainability::build(&input, &plan, from, to)
    }

    /// The projects (with their comune) counting in zone `code`.
    pub fn of_zone<'a>(
        &'a self,
        code: &'a str,
    ) -> impl Iterator<Item = &'a (String, Project)> + 'a {
        self.projects
            .iter()
            .zip(&self.project_zones)
            .filter(move |(_, z)| z.as_deref() == Some(code))
            .map(|(p, _)| p)
    }
}

/// The key of the data as the store holds them now, with the day.
pub fn current_key(replica: &mut Replica, as_of: Date) -> Result<String, ReplicaError> {
    Ok(format!("{}-{as_of}", replica.query(heads_key)?))
}

/// Reads the public data from the query store and computes the figures.
pub fn load(replica: &mut Replica, as_of: Date) -> Result<Arc<Snapshot>, ReplicaError> {
    let (key, read, last) = replica.query(|tx| {
        let key = format!("{}-{as_of}", heads_key(tx)?);
        let read = public_read(tx, as_of)?;
        let last = crate::views::dashboard::last_changes(tx)?
            .into_iter()
            .map(|(_, ms)| ms)
            .max();
        Ok((key, read, last))
    })?;
    let report = report::build(&read.input);
    let mut plan = read.plan;
    let mut take = |k: Kind| plan.remove(k.prefix()).unwrap_or_default();
    let (axes, objectives, actions) = (take(Kind::Axis), take(Kind::Objective), take(Kind::Action));
    let (zone_items, periods, texts) = (take(Kind::Zone), take(Kind::Period), take(Kind::Text));
    let projects: Vec<(String, Project)> = read
        .input
        .comuni
        .into_iter()
        .flat_map(|(c, ps)| ps.into_iter().map(move |p| (c.clone(), p)))
        .collect();
    let project_zones: Vec<Option<String>> = projects
        .iter()
        .map(|(c, p)| zone_of(p, c, &zone_items, as_of))
        .collect();
    let mut zones: Vec<ZoneRow> = zone_items
        .iter()
        .map(|z| ZoneRow {
            code: z.code.clone(),
            name: z.name.clone(),
            money: Money::default(),
        })
        .collect();
    for ((_, p), zone) in projects.iter().zip(&project_zones) {
        let Some(zone) = zone else { continue };
        let row = match zones.iter_mut().position(|z| &z.code == zone) {
            Some(i) => &mut zones[i],
            None => {
                zones.push(ZoneRow {
                    code: zone.clone(),
                    name: zone.clone(),
                    money: Money::default(),
                });
                zones.last_mut().expect("just pushed")
            }
        };
        row.money.add(p);
    }
    Ok(Arc::new(Snapshot {
        key,
        as_of,
        report,
        projects,
        project_zones,
        zones,
        axes,
        objectives,
        actions,
        periods,
        texts,
        catalog: read.input.catalog,
        indicator_data: read.input.indicator_data,
        last_change_ms: last,
        files: Mutex::new(HashMap::new()),
    }))
}
