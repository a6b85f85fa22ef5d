//! The web application's languages: Italian (the default) and English.
//! Words of the pages are looked up by key in [`MESSAGES`]; amounts and
//! dates are written the way each language writes them (`1.234.567,89 €`,
//! `31/12/2026` in Italian; `€1,234,567.89`, `2026-12-31` in English).
//!
//! The language is the person's choice (a `lang` cookie, set by the switch
//! in the page header), else the browser's `Accept-Language`, else Italian.

use accordo_domain::model::Date;
use accordo_domain::money::format_eur;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    It,
    En,
}

/// Name of the cookie that remembers the language chosen.
pub const LANG_COOKIE: &str = "lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "it" => Some(Lang::It),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language, for the switch in the header.
    pub fn other(self) -> Lang {
        match self {
            Lang::It => Lang::En,
            Lang::En => Lang::It,
        }
    }

    /// The language of a request: the cookie, else the best of
    /// `Accept-Language` that we have (q-values honoured), else Italian.
    pub fn choose(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(l) = cookie.and_then(Lang::parse) {
            return l;
        }
        let mut best: Option<(f32, Lang)> = None;
        for part in accept_language.unwrap_or("").split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let primary = tag.split('-').next().unwrap_or("");
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(l) = Lang::parse(primary) {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, l));
                }
            }
        }
        best.map(|(_, l)| l).unwrap_or_default()
    }

    /// The page's word for `key`; the key itself when it has none (a
    /// missing translation shows up, it does not break the page).
    pub fn t(self, key: &str) -> &'static str {
        match MESSAGES.binary_search_by(|(k, _, _)| (*k).cmp(key)) {
            Ok(i) => match self {
                Lang::It => MESSAGES[i].1,
                Lang::En => MESSAGES[i].2,
            },
            Err(_) => "?",
        }
    }

    /// The word for `key` if there is one.
    pub fn lookup(self, key: &str) -> Option<&'static str> {
        MESSAGES
            .binary_search_by(|(k, _, _)| (*k).cmp(key))
            .ok()
            .map(|i| match self {
                Lang::It => MESSAGES[i].1,
                Lang::En => MESSAGES[i].2,
            })
    }

    /// A refusal of a form field, said in the page's language: the field's
    /// label first, then the detail (the operation's own words, which the
    /// command line shows too).
    pub fn field_error(self, field: &str, detail: &str) -> String {
        let key = format!("field.{}", field.trim_end_matches("_eur"));
        match (self, self.lookup(&key)) {
            (Lang::It, Some(label)) => format!("il campo «{label}» non è valido — {detail}"),
            (Lang::En, Some(label)) => format!("the field “{label}” is not valid — {detail}"),
            (_, None) => detail.to_owned(),
        }
    }

    /// An amount in euro cents, as the language writes it.
    pub fn eur(self, cents: i64) -> String {
        let it = format_eur(cents);
        match self {
            Lang::It => format!("{it}\u{a0}€"),
            Lang::En => {
                let swapped: String = it
                    .chars()
                    .map(|c| match c {
                        '.' => ',',
                        ',' => '.',
                        c => c,
                    })
                    .collect();
                match swapped.strip_prefix('-') {
                    Some(rest) => format!("-€{rest}"),
                    None => format!("€{swapped}"),
                }
            }
        }
    }

    /// An optional amount; a dash when there is none.
    pub fn eur_opt(self, cents: Option<i64>) -> String {
        cents.map(|c| self.eur(c)).unwrap_or_else(|| "–".into())
    }

    /// A measured value (an indicator's), with the language's decimal mark.
    pub fn number(self, v: f64) -> String {
        let text = if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{v:.0}")
        } else {
            let t = format!("{v:.3}");
            t.trim_end_matches('0').trim_end_matches('.').to_owned()
        };
        match self {
            Lang::It => text.replace('.', ","),
            Lang::En => text,
        }
    }

    /// A count with thousands grouped (`62.400` / `62,400`).
    pub fn count(self, n: usize) -> String {
        let digits = n.to_string();
        let sep = match self {
            Lang::It => '.',
            Lang::En => ',',
        };
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(sep);
            }
            out.push(ch);
        }
        out
    }

    /// A date as the language writes it.
    pub fn date(self, d: &Date) -> String {
        match self {
            Lang::It => format!("{:02}/{:02}/{:04}", d.day, d.month, d.year),
            Lang::En => d.to_string(),
        }
    }

    pub fn date_opt(self, d: Option<&Date>) -> String {
        d.map(|d| self.date(d)).unwrap_or_else(|| "–".into())
    }

    /// A moment (milliseconds since the epoch) as date and time in Italy's
    /// time zone, where every office of the network is.
    pub fn moment_ms(self, ms: u64) -> String {
        let Ok(ts) = jiff::Timestamp::from_millisecond(ms as i64) else {
            return "–".into();
        };
        let tz = jiff::tz::TimeZone::get("Europe/Rome").unwrap_or(jiff::tz::TimeZone::UTC);
        let at = ts.to_zoned(tz);
        match self {
            Lang::It => at.strftime("%d/%m/%Y %H:%M").to_string(),
            Lang::En => at.strftime("%Y-%m-%d %H:%M").to_string(),
        }
    }
}

/// (key, Italian, English), sorted by key (a test checks the order).
pub const MESSAGES: &[(&str, &str, &str)] = &[
    ("action.add_funding", "Aggiungi finanziamento", "Add funding line"),
    ("action.add_milestone", "Aggiungi milestone", "Add milestone"),
    ("action.apply", "Applica", "Apply"),
    ("action.choose_value", "Scegli questo valore", "Choose this value"),
    ("action.confirm_import", "Conferma l'importazione", "Confirm the import"),
    ("action.decide", "Applica", "Apply"),
    ("action.download", "Scarica", "Download"),
    ("action.dry_run", "Verifica il file", "Check the file"),
    ("action.edit", "Modifica", "Edit"),
    ("action.login", "Accedi", "Sign in"),
    ("action.logout", "Esci", "Sign out"),
    ("action.mark_done", "Segna come raggiunta", "Mark as achieved"),
    ("action.new_project", "Nuovo progetto", "New project"),
    ("action.publish", "Pubblica sul portale", "Publish on the portal"),
    ("action.remove", "Rimuovi", "Remove"),
    ("action.save", "Salva", "Save"),
    ("action.search", "Cerca", "Search"),
    ("action.unpublish", "Riporta in bozza", "Back to draft"),
    ("admin.add_relay", "Annuncia un relay", "Announce a relay"),
    ("admin.cancel", "Annulla", "Cancel"),
    ("admin.copy", "Copia", "Copy"),
    ("admin.days", "Validità (giorni)", "Valid for (days)"),
    ("admin.done", "Fatto:", "Done:"),
    ("admin.enroll", "Iscrivi una chiave", "Enroll a key"),
    ("admin.inv_created", "Creato", "Created"),
    ("admin.inv_expires", "Scade", "Expires"),
    ("admin.invitations", "Inviti firmati da questo nodo", "Invitations signed on this node"),
    ("admin.invite", "Crea un invito", "Create an invitation"),
    ("admin.members", "Chiavi e relay della rete", "The network's keys and relays"),
    ("admin.no_invitations", "Nessun invito firmato da questo nodo.", "No invitation signed on this node."),
    ("admin.not_admin", "Questa pagina è dei nodi di amministrazione della rete.", "This page belongs to the network's admin nodes."),
    ("admin.pushed", "(inviato al relay con la prossima sincronizzazione)", "(pushed to the relay by the next sync)"),
    ("admin.revoke", "Revoca", "Revoke"),
    ("admin.revoke_confirm", "Revoca la chiave", "Revoke the key"),
    ("admin.revoke_help", "Prima di firmare la revoca il nodo si sincronizza con il relay: le modifiche di questa chiave che la rete ha già accettato restano valide; quelle fatte dopo sono rifiutate da tutti i nodi. La revoca è definitiva.", "Before signing the revocation the node syncs with the relay: the changes of this key the network has already accepted stay valid; those made later are refused by every node. A revocation is final."),
    ("admin.revoke_kept", "modifiche accettate restano valide", "accepted changes stay valid"),
    ("admin.revoke_not_done", "Revoca non eseguita, nulla è stato firmato:", "Revocation not done, nothing was signed:"),
    ("admin.revoke_offline", "Revoca senza contattare il relay (solo con ciò che questo nodo conosce)", "Revoke without reaching the relay (on what this node knows only)"),
    ("admin.revoke_offline_done", "revoca firmata senza contattare il relay: la prossima sincronizzazione la invia", "revocation signed without reaching the relay: the next sync delivers it"),
    ("admin.revoke_refused", "modifiche concorrenti rifiutate ovunque", "concurrent changes refused everywhere"),
    ("admin.revoke_title", "Confermi la revoca?", "Revoke this key?"),
    ("admin.revoke_undelivered", "Revoca firmata ma non ancora consegnata al relay:", "Revocation signed but not yet delivered to the relay:"),
    ("admin.state_expired", "scaduto", "expired"),
    ("admin.state_pending", "in attesa", "pending"),
    ("admin.state_redeemed", "usato da", "redeemed by"),
    ("admin.status", "Stato", "Status"),
    ("admin.token", "Codice di invito", "Invitation token"),
    ("admin.token_help", "Copialo e consegnalo all'ufficio del comune: lo usa con `accordo init --invite`. Vale una volta sola.", "Copy it and hand it to the comune's office: it is used with `accordo init --invite`. It is valid once."),
    ("app.name", "Accordo", "Accordo"),
    ("app.skip", "Vai al contenuto", "Skip to content"),
    ("app.tagline", "Piano Strategico Metropolitano", "Strategic Metropolitan Plan"),
    ("audit.fields", "Campi", "Fields"),
    ("audit.no", "no", "no"),
    ("audit.node", "Chiave del nodo", "Node key"),
    ("audit.person", "Persona", "Person"),
    ("audit.role", "Ruolo", "Role"),
    ("audit.time", "Quando (UTC)", "When (UTC)"),
    ("audit.valid", "Valida", "Valid"),
    ("audit.yes", "sì", "yes"),
    ("dash.by_comune", "Per comune", "By comune"),
    ("dash.by_mission", "Per missione PNRR", "By PNRR mission"),
    ("dash.by_source", "Per fonte di finanziamento", "By funding source"),
    ("dash.by_state", "Per stato procedurale", "By procedural state"),
    ("dash.by_zone", "Per zona omogenea", "By zona omogenea"),
    ("dash.committed", "Impegnato", "Committed"),
    ("dash.financed", "Finanziato", "Financed"),
    ("dash.last_change", "Ultima modifica ricevuta", "Newest change received"),
    ("dash.last_sync", "Ultima sincronizzazione", "Last sync"),
    ("dash.late", "Milestone in ritardo", "Late milestones"),
    ("dash.paid", "Pagato", "Paid"),
    ("dash.paid_share", "Pagato / finanziato", "Paid / financed"),
    ("dash.silent", "silente da oltre 3 giorni", "silent for over 3 days"),
    ("dash.totals", "Totali", "Totals"),
    ("decision.comune", "Lasciata al comune (vale la scelta del comune)", "Left to the comune (the comune's choice applies)"),
    ("decision.draft", "Non pubblicare (anche se il comune lo pubblica)", "Do not publish (even if the comune publishes it)"),
    ("decision.published", "Pubblica (anche se il comune non lo pubblica)", "Publish (even if the comune does not)"),
    ("error.csrf", "Richiesta rifiutata: il modulo è scaduto o non proviene da questa pagina. Ricarica la pagina e riprova.", "Request refused: the form expired or did not come from this page. Reload the page and try again."),
    ("error.forbidden", "Il tuo ruolo non consente modifiche.", "Your role cannot change anything."),
    ("error.login", "Nome o password non validi.", "Invalid name or password."),
    ("error.not_found", "Pagina non trovata", "Page not found"),
    ("error.office_closed", "Le pagine dell'ufficio non sono ancora aperte su questo indirizzo: serve un account (accordo user add). Il portale pubblico è su /pubblico/.", "The office pages are not open on this address yet: they need an account (accordo user add). The public portal is at /pubblico/."),
    ("error.rate_limited", "Troppi tentativi: riprova tra qualche minuto.", "Too many attempts: try again in a few minutes."),
    ("error.server", "Errore del nodo", "Node error"),
    ("error.title", "Errore", "Error"),
    ("field.committed", "Impegnato (€)", "Committed (€)"),
    ("field.cost", "Costo (€)", "Cost (€)"),
    ("field.cup", "CUP", "CUP"),
    ("field.dimension", "Dimensioni (governance, environmental, social, economic)", "Dimensions (governance, environmental, social, economic)"),
    ("field.financed", "Finanziato (€)", "Financed (€)"),
    ("field.implementing_body", "Soggetto attuatore", "Implementing body"),
    ("field.local_code", "Codice locale", "Local code"),
    ("field.location", "Localizzazioni (ISTAT:PERCENTUALE, separate da virgola)", "Locations (ISTAT:PERCENT, comma-separated)"),
    ("field.name", "Nome", "Name"),
    ("field.notes", "Note", "Notes"),
    ("field.officer", "RUP / referente", "Officer"),
    ("field.paid", "Pagato (€)", "Paid (€)"),
    ("field.password", "Password", "Password"),
    ("field.pnrr_measure", "Misura PNRR (es. M5C2I2.2)", "PNRR measure (e.g. M5C2I2.2)"),
    ("field.progress", "Avanzamento fisico (%)", "Physical progress (%)"),
    ("field.psm", "Collegamenti PSM (codici, separati da virgola)", "PSM links (codes, comma-separated)"),
    ("field.sdg", "SDG (1..17, separati da virgola)", "SDGs (1..17, comma-separated)"),
    ("field.state", "Stato procedurale (vuoto: derivato dalle fasi)", "Procedural state (empty: derived from the phases)"),
    ("field.summary", "Sintesi", "Summary"),
    ("field.title", "Titolo", "Title"),
    ("field.zone", "Zona omogenea", "Zona omogenea"),
    ("filter.all", "Tutti", "All"),
    ("filter.late", "Solo con milestone in ritardo", "Only with late milestones"),
    ("filter.mission", "Missione PNRR", "PNRR mission"),
    ("filter.source", "Fonte di finanziamento", "Funding source"),
    ("filter.state", "Stato procedurale", "Procedural state"),
    ("import.added", "aggiunti", "added"),
    ("import.auto", "Riconosci dal file", "Detect from the file"),
    ("import.checked", "Verifica del file: nulla è stato ancora scritto", "File checked: nothing written yet"),
    ("import.done", "Importazione completata:", "Import done:"),
    ("import.expired", "Il file verificato non è più disponibile (scaduto o già importato): caricalo di nuovo.", "The checked file is no longer available (expired or already imported): upload it again."),
    ("import.file", "File (CSV o XLSX)", "File (CSV or XLSX)"),
    ("import.format", "Formato", "Format"),
    ("import.more_errors", "altri errori", "more errors"),
    ("import.not_kept", "Colonne non conservate", "Columns not kept"),
    ("import.nothing_imported", "il file contiene errori, nulla è stato importato.", "the file has errors, nothing was imported."),
    ("import.other_comuni", "righe di altri comuni ignorate", "rows of other comuni skipped"),
    ("import.unchanged", "invariati", "unchanged"),
    ("import.updated", "aggiornati", "updated"),
    ("import.would_import", "progetti di questo comune verrebbero importati", "projects of this comune would be imported"),
    ("indicator.baseline", "Valore di partenza", "Baseline"),
    ("indicator.by_comune", "Ultimo valore di ogni comune", "Latest value of each comune"),
    ("indicator.indicator", "Indicatore", "Indicator"),
    ("indicator.none", "Il catalogo degli indicatori del piano è vuoto.", "The plan's indicator catalog is empty."),
    ("indicator.observe", "Registra l'osservazione", "Record the observation"),
    ("indicator.period", "Periodo", "Period"),
    ("indicator.saved", "Osservazione registrata.", "Observation recorded."),
    ("indicator.target", "Obiettivo", "Target"),
    ("indicator.value", "Valore", "Value"),
    ("lang.switch", "English", "Italiano"),
    ("list.next", "Successivi", "Next"),
    ("list.pages", "Pagine", "Pages"),
    ("list.prev", "Precedenti", "Previous"),
    ("list.search", "Cerca per CUP o titolo", "Search by CUP or title"),
    ("nav.admin", "Amministrazione", "Administration"),
    ("nav.dashboard", "Cruscotto", "Dashboard"),
    ("nav.import", "Importa", "Import"),
    ("nav.indicators", "Indicatori", "Indicators"),
    ("nav.projects", "Progetti", "Projects"),
    ("nav.report", "Rapporto", "Report"),
    ("page.login", "Accesso", "Sign in"),
    ("page.new_project", "Nuovo progetto", "New project"),
    ("page.projects", "Progetti", "Projects"),
    ("project.achieved", "Raggiunta il", "Achieved on"),
    ("project.actual", "Effettive", "Actual"),
    ("project.actual_end", "Fine effettiva", "Actual end"),
    ("project.actual_start", "Inizio effettivo", "Actual start"),
    ("project.amount", "Importo", "Amount"),
    ("project.audit", "Chi ha firmato ogni modifica", "Who signed each change"),
    ("project.by_comune", "scelta del comune", "the comune's choice"),
    ("project.by_metro", "deciso dall'ufficio metropolitano", "decided by the metropolitan office"),
    ("project.code", "Codice", "Code"),
    ("project.comune", "Comune", "Comune"),
    ("project.conflicts", "Modifiche concorrenti", "Concurrent edits"),
    ("project.conflicts_help", "Due modifiche fatte in contemporanea hanno dato valori diversi a questi campi: è mostrato il primo; scegli quello giusto.", "Two edits made at the same time gave these fields different values: the first is shown; choose the right one."),
    ("project.count", "progetti", "projects"),
    ("project.description", "Descrizione", "Description"),
    ("project.draft", "Bozza (non pubblico)", "Draft (not public)"),
    ("project.due", "Scadenza", "Due"),
    ("project.funding", "Finanziamenti", "Funding"),
    ("project.late", "In ritardo", "Late"),
    ("project.metro_decision", "Decisione dell'ufficio metropolitano", "Metropolitan office's decision"),
    ("project.metro_overrides", "L'ufficio metropolitano ha deciso per questo progetto: la scelta del comune non si applica finché non la rimette al comune.", "The metropolitan office decided for this project: the comune's choice does not apply until the office leaves it to the comune again."),
    ("project.milestones", "Milestone e target", "Milestones and targets"),
    ("project.none", "Nessun progetto.", "No projects."),
    ("project.phase", "Fase", "Phase"),
    ("project.phases", "Fasi procedurali", "Procedural phases"),
    ("project.planned", "Previste", "Planned"),
    ("project.planned_end", "Fine prevista", "Planned end"),
    ("project.planned_start", "Inizio previsto", "Planned start"),
    ("project.programme", "Programma", "Programme"),
    ("project.publication", "Pubblicazione", "Publication"),
    ("project.published", "Pubblicato sul portale", "Published on the portal"),
    ("project.saved", "Progetto salvato.", "Project saved."),
    ("project.source", "Fonte", "Source"),
    ("project.state", "Stato", "State"),
    ("public.catalog", "Catalogo DCAT-AP_IT", "DCAT-AP_IT catalogue"),
    ("public.deviation", "Scostamento dal valore di partenza", "Deviation from the baseline"),
    ("public.dim.economic", "Sostenibilità economica", "Economic sustainability"),
    ("public.dim.environmental", "Sostenibilità ambientale", "Environmental sustainability"),
    ("public.dim.governance", "Governance", "Governance"),
    ("public.dim.none", "Altri indicatori", "Other indicators"),
    ("public.dim.social", "Sostenibilità sociale", "Social sustainability"),
    ("public.document", "Documento", "Document"),
    ("public.documents", "Documenti firmati da cui sono calcolati i dati", "Signed documents the figures are computed from"),
    ("public.from_year", "Dall'anno", "From year"),
    ("public.heads", "Teste (hash delle ultime modifiche firmate)", "Heads (hashes of the latest signed changes)"),
    ("public.home", "Il piano", "The plan"),
    ("public.intro", "Il Piano Strategico Metropolitano e i progetti che i comuni hanno pubblicato: stato procedurale, importi finanziati, impegnati e pagati, milestone in ritardo e indicatori. I dati sono quelli firmati e sincronizzati dagli uffici.", "The Strategic Metropolitan Plan and the projects the comuni have published: procedural state, financed, committed and paid amounts, late milestones and indicators. The figures are those the offices signed and synchronised."),
    ("public.judgement", "Giudizio", "Judgement"),
    ("public.judgement.negative", "peggioramento", "worse"),
    ("public.judgement.neutral", "indicatore di contesto", "context indicator"),
    ("public.judgement.positive", "miglioramento", "better"),
    ("public.judgement.stable", "invariato", "unchanged"),
    ("public.judgement.unknown", "dato non disponibile", "no data"),
    ("public.latest", "Ultimo valore", "Latest value"),
    ("public.metro", "Città metropolitana", "Metropolitan city"),
    ("public.name", "Il piano in pubblico", "The plan in public"),
    ("public.nav", "Sezioni del portale", "Portal sections"),
    ("public.no_indicators", "Nessun indicatore pubblicato.", "No indicator published."),
    ("public.objectives", "Obiettivi del piano e progetti che vi contribuiscono", "The plan's objectives and the projects contributing to them"),
    ("public.open_data", "Dati aperti", "Open data"),
    ("public.opendata_intro", "I dati dei progetti pubblicati e degli indicatori, in CSV (UTF-8, una tabella per file), JSON e XLSX, con la licenza", "The data of the published projects and indicators, as CSV (UTF-8, one table per file), JSON and XLSX, under the licence"),
    ("public.plan", "Assi, obiettivi e azioni del piano", "The plan's axes, objectives and actions"),
    ("public.polarity_down", "Migliora quando diminuisce.", "Better when it goes down."),
    ("public.polarity_neutral", "Indicatore di contesto.", "Context indicator."),
    ("public.polarity_up", "Migliora quando aumenta.", "Better when it goes up."),
    ("public.progress", "Avanzamento verso l'obiettivo", "Progress towards the target"),
    ("public.projects", "Progetti pubblicati", "Published projects"),
    ("public.stamp", "Verifica dei dati", "Data verification"),
    ("public.stamp_help", "Chi ha le stesse modifiche firmate può ricalcolare queste cifre e confrontarne l'impronta.", "Anyone holding the same signed changes can recompute these figures and compare their digest."),
    ("public.sustainability", "Bilancio di sostenibilità", "Sustainability report"),
    ("public.territory", "Territorio", "Territory"),
    ("public.title", "Piano Strategico Metropolitano", "Strategic Metropolitan Plan"),
    ("public.to_year", "All'anno", "To year"),
    ("public.updated", "Dati aggiornati al", "Data last updated"),
    ("public.verification_help", "Le cifre del portale sono calcolate da questi documenti, alle teste indicate; l'impronta blake3 in fondo alla pagina riassume il risultato.", "The portal's figures are computed from these documents, at the heads shown; the blake3 digest at the foot of the page sums up the result."),
    ("report.as_of", "Alla data", "As of"),
    ("report.digest", "Impronta (blake3)", "Digest (blake3)"),
    ("report.documents", "Documenti (con le loro teste)", "Documents (with their heads)"),
    ("report.open_data", "Dati aperti dei progetti", "Projects open data"),
    ("report.period", "Periodo degli indicatori (facoltativo)", "Indicator period (optional)"),
    ("report.stamp", "Verifica del rapporto", "Report verification"),
    ("report.verify_help", "Chi ha le stesse modifiche firmate può ricalcolarlo e verificarlo:", "Anyone holding the same signed changes can recompute and check it:"),
    ("sync.changes_waiting", "Modifiche in attesa di invio", "Changes waiting to be sent"),
    ("sync.in_sync", "Sincronizzato", "In sync"),
    ("sync.last_contact", "Ultimo contatto con il relay", "Last contact with the relay"),
    ("sync.never", "mai", "never"),
    ("sync.rejected", "Modifiche rifiutate", "Rejected changes"),
    ("sync.title", "Sincronizzazione", "Synchronisation"),
    ("sync.waiting", "Non sincronizzato", "Not in sync"),
    ("warning.title", "Attenzione", "Warning"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_error_names_the_field_in_the_page_language() {
        assert_eq!(
            Lang::It.field_error("financed_eur", "invalid amount \"x\""),
            "il campo «Finanziato (€)» non è valido — invalid amount \"x\""
        );
        assert!(Lang::En
            .field_error("title", "empty")
            .starts_with("the field “"));
        assert_eq!(Lang::It.field_error("no_such_field", "detail"), "detail");
    }

    #[test]
    fn messages_are_sorted_and_unique_so_lookups_find_them() {
        for pair in MESSAGES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        assert_eq!(Lang::It.t("action.save"), "Salva");
        assert_eq!(Lang::En.t("action.save"), "Save");
        assert_eq!(Lang::It.t("no.such.key"), "?");
    }

    #[test]
    fn amounts_dates_and_counts_in_each_language() {
        assert_eq!(Lang::It.eur(123_456_789), "1.234.567,89\u{a0}€");
        assert_eq!(Lang::En.eur(123_456_789), "€1,234,567.89");
        assert_eq!(Lang::En.eur(-5), "-€0.05");
        let d = Date {
            year: 2026,
            month: 12,
            day: 31,
        };
        assert_eq!(Lang::It.date(&d), "31/12/2026");
        assert_eq!(Lang::En.date(&d), "2026-12-31");
        assert_eq!(Lang::It.count(62_400), "62.400");
        assert_eq!(Lang::It.number(52.5), "52,5");
        assert_eq!(Lang::En.number(52.5), "52.5");
        assert_eq!(Lang::It.number(40.0), "40");
        assert_eq!(Lang::En.count(1_000_000), "1,000,000");
        // 2026-12-03 10:00 UTC is 11:00 in Rome (CET).
        assert_eq!(Lang::It.moment_ms(1_796_292_000_000), "03/12/2026 11:00");
        // 2026-07-01 10:00 UTC is 12:00 in Rome (CEST).
        assert_eq!(Lang::En.moment_ms(1_782_900_000_000), "2026-07-01 12:00");
    }

    #[test]
    fn the_cookie_wins_then_accept_language_by_quality_then_italian() {
        assert_eq!(Lang::choose(Some("en"), Some("it")), Lang::En);
        assert_eq!(
            Lang::choose(None, Some("en-GB,en;q=0.9,it;q=0.8")),
            Lang::En
        );
        assert_eq!(
            Lang::choose(None, Some("de-DE,it;q=0.5,en;q=0.9")),
            Lang::En
        );
        assert_eq!(Lang::choose(None, Some("fr,de")), Lang::It);
        assert_eq!(Lang::choose(Some("xx"), None), Lang::It);
        assert_eq!(Lang::choose(None, Some("en;q=0")), Lang::It);
    }
}
