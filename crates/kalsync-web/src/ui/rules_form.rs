//! The rules as a form (issue 17, One X's *Synkroniseringsregler*): a template to start
//! from, a table of rules — Outlook status, prefix, categories, all-day, duration and
//! response as conditions; reason and *Information/Hänvisning* as the outcome — moved up
//! and down, added and removed, and the instance's settings as fields. The form and the
//! rules file edit the same settings: the form is read into the settings' own TOML
//! (every key the form has no field for is kept from the settings it was shown with),
//! which [`InstanceSettings::from_toml`] then checks — so both are held to one set of
//! rules and one saves what the other shows.

use kalsync_core::{InstanceSettings, Lang, SettingsError, Template};
use maud::{Markup, html};
use toml::{Table, Value};

use super::i18n::Texts;

/// Outlook's "show as" states a rule can ask for, as the rules file names them.
const SHOW_AS: [&str; 5] = ["free", "tentative", "busy", "oof", "working_elsewhere"];
/// The owner's responses a rule can ask for.
const RESPONSES: [&str; 6] = [
    "organizer",
    "accepted",
    "tentative",
    "declined",
    "not_responded",
    "none",
];
/// Days of the week, as the rules file names them.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A response in the page's language.
fn response_label(lang: Lang, code: &str) -> &'static str {
    match (lang, code) {
        (Lang::Sv, "organizer") => "Organisatör",
        (Lang::Sv, "accepted") => "Accepterat",
        (Lang::Sv, "tentative") => "Preliminärt",
        (Lang::Sv, "declined") => "Avböjt",
        (Lang::Sv, "not_responded") => "Inte svarat",
        (Lang::Sv, "none") => "Ingen inbjudan",
        (Lang::En, "organizer") => "Organizer",
        (Lang::En, "accepted") => "Accepted",
        (Lang::En, "tentative") => "Tentative",
        (Lang::En, "declined") => "Declined",
        (Lang::En, "not_responded") => "Not responded",
        (Lang::En, "none") => "No invitation",
        _ => "?",
    }
}

/// A weekday in the page's language.
fn day_label(lang: Lang, code: &str) -> &'static str {
    let sv = ["mån", "tis", "ons", "tor", "fre", "lör", "sön"];
    let en = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let i = DAYS.iter().position(|d| *d == code).unwrap_or(0);
    match lang {
        Lang::Sv => sv[i],
        Lang::En => en[i],
    }
}

/// A template in the page's language.
fn template_label(lang: Lang, t: Template) -> &'static str {
    match (lang, t) {
        (Lang::Sv, Template::ShowasInfo) => "Standard: Outlook-status som information",
        (Lang::Sv, Template::ShowasDivert) => "Outlook-status med hänvisning",
        (Lang::Sv, Template::Prefix) => "Prefix i ämnesraden (LUN: …)",
        (Lang::Sv, Template::PrefixThenShowas) => "Prefix, annars Outlook-status",
        (Lang::En, Template::ShowasInfo) => "Standard: Outlook status as information",
        (Lang::En, Template::ShowasDivert) => "Outlook status with diversion",
        (Lang::En, Template::Prefix) => "Subject prefix (LUN: …)",
        (Lang::En, Template::PrefixThenShowas) => "Prefix, else Outlook status",
    }
}

/// The settings as the rules file writes them, as a table.
fn table_of(settings: &InstanceSettings) -> Table {
    settings.to_toml().parse::<Table>().unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

/// Where the form said something was wrong: the rule (0-based) or setting, and why.
#[derive(Debug, Clone, Default)]
pub(crate) struct Problem {
    /// `rules[2]` → 2.
    pub(crate) rule: Option<usize>,
    /// The message, with the field it names.
    pub(crate) message: String,
}

impl Problem {
    /// The rule and field a mistake in `file` (the form read into the rules file)
    /// names: by its path, or else by where in the file it is.
    fn from_settings(e: &SettingsError, t: &Texts, file: &str) -> Problem {
        let rule = e
            .path
            .as_deref()
            .and_then(|p| {
                p.strip_prefix("rules[")
                    .and_then(|r| r.split(']').next())
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .or_else(|| e.span.as_ref().and_then(|s| rule_at(file, s.start)));
        let key = e.span.as_ref().and_then(|s| key_at(file, s.start));
        let field = e
            .path
            .as_deref()
            .or(key)
            .map(|p| field_label(t, p))
            .unwrap_or_default();
        let message = match rule {
            Some(i) => format!("{} {}: {field}: {}", t.rule, i + 1, e.message),
            None if !field.is_empty() => format!("{field}: {}", e.message),
            None => e.message.clone(),
        };
        Problem { rule, message }
    }
}

/// The rule (0-based) whose section of the file holds byte `at`: the last section
/// header before it is a rule's (`[[rules]]`, or its `[rules.when]`).
fn rule_at(file: &str, at: usize) -> Option<usize> {
    let before = file.get(..at)?;
    let header = before
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('['))?
        .trim();
    if header != "[[rules]]" && !header.starts_with("[rules.") {
        return None;
    }
    before
        .lines()
        .filter(|l| l.trim() == "[[rules]]")
        .count()
        .checked_sub(1)
}

/// The key on the line of the file that holds byte `at`.
fn key_at(file: &str, at: usize) -> Option<&str> {
    let start = file.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line = file.get(start..)?.lines().next()?;
    let (key, _) = line.split_once('=')?;
    Some(key.trim())
}

/// A field of the rules file named as the form names it.
fn field_label(t: &Texts, path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or(path);
    let last = last.split('[').next().unwrap_or(last);
    match last {
        "reason" => t.reason.to_owned(),
        "mode" => t.mode.to_owned(),
        "prefix" => t.rule_prefix.to_owned(),
        "categories" => t.rule_categories.to_owned(),
        "min_duration" => t.rule_min.to_owned(),
        "max_duration" => t.rule_max.to_owned(),
        "show_as" => t.rule_show_as.to_owned(),
        "response" => t.rule_response.to_owned(),
        "days_ahead" => t.days_ahead.to_owned(),
        "time_zone" => t.time_zone.to_owned(),
        "allowed_reasons" => t.allowed_reasons.to_owned(),
        "working_hours" | "start" | "end" | "days" => t.working_hours.to_owned(),
        other => other.to_owned(),
    }
}

/// The first value posted under `key`.
pub(crate) fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every value posted under `key` (checkboxes repeat their name).
fn all(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

/// What the form asked for besides its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Save the settings.
    Save,
    /// Show the form again (a preview, or after a template's rules were taken).
    Show,
}

/// Reads the posted form into settings: the fields over the settings it was shown with
/// (`base`, the rules file), then a row moved, added or removed, or a template's rules
/// taken, as the pressed button says. The settings, and what to do with them; or the
/// settings as far as they could be read with what is wrong.
pub(crate) fn read(
    t: &Texts,
    pairs: &[(String, String)],
) -> Result<(InstanceSettings, Op), (String, Problem)> {
    let get = |k: &str| get(pairs, k);
    let base_text = get("base").unwrap_or("");
    let mut table = base_text.parse::<Table>().map_err(|e| {
        (
            base_text.to_owned(),
            Problem {
                rule: None,
                message: e.message().to_owned(),
            },
        )
    })?;
    let op = get("op").unwrap_or("save");
    if op == "template" {
        // A template's rules in place of the table's: the file names the template, and
        // reading it writes the rules out.
        table.remove("rules");
        table.remove("from_template");
        table.insert(
            "template".into(),
            Value::String(get("template").unwrap_or("showas-info").to_owned()),
        );
    } else {
        let count: usize = get("rules").and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut rules: Vec<Value> = (0..count.min(500))
            .map(|i| Value::Table(rule_of(pairs, i)))
            .collect();
        if let Some(n) = op
            .strip_prefix("remove:")
            .and_then(|n| n.parse::<usize>().ok())
            && n < rules.len()
        {
            rules.remove(n);
        }
        if let Some(n) = op.strip_prefix("up:").and_then(|n| n.parse::<usize>().ok())
            && n > 0
            && n < rules.len()
        {
            rules.swap(n - 1, n);
        }
        if let Some(n) = op
            .strip_prefix("down:")
            .and_then(|n| n.parse::<usize>().ok())
            && n + 1 < rules.len()
        {
            rules.swap(n, n + 1);
        }
        if op == "add" {
            let mut rule = Table::new();
            rule.insert("reason".into(), Value::String("busy".into()));
            rule.insert("mode".into(), Value::String("info".into()));
            rules.push(Value::Table(rule));
        }
        table.insert("rules".into(), Value::Array(rules));
        settings_fields(&mut table, pairs);
    }
    let text = toml::to_string_pretty(&table).unwrap_or_default();
    match InstanceSettings::from_toml(&text) {
        Ok(s) => Ok((s, if op == "save" { Op::Save } else { Op::Show })),
        Err(e) => {
            let problem = Problem::from_settings(&e, t, &text);
            Err((text, problem))
        }
    }
}

/// Rule `i` of the form as the rules file writes it.
fn rule_of(pairs: &[(String, String)], i: usize) -> Table {
    let get = |k: &str| get(pairs, k);
    let all = |k: &str| all(pairs, k);
    let key = |f: &str| format!("r{i}.{f}");
    let mut rule = Table::new();
    let name = get(&key("name")).unwrap_or("").trim();
    if !name.is_empty() {
        rule.insert("name".into(), Value::String(name.to_owned()));
    }
    let mut when = Table::new();
    let show_as = all(&key("show_as"));
    if !show_as.is_empty() {
        when.insert(
            "show_as".into(),
            Value::Array(show_as.into_iter().map(Value::String).collect()),
        );
    }
    let prefix = get(&key("prefix")).unwrap_or("").trim();
    if !prefix.is_empty() {
        let prefix = if prefix.ends_with(':') || prefix.ends_with(';') {
            prefix.to_owned()
        } else {
            format!("{prefix}:")
        };
        when.insert("prefix".into(), Value::String(prefix));
    }
    let categories: Vec<Value> = get(&key("categories"))
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| Value::String(c.to_owned()))
        .collect();
    if !categories.is_empty() {
        when.insert("categories".into(), Value::Array(categories));
    }
    match get(&key("all_day")) {
        Some("yes") => {
            when.insert("all_day".into(), Value::Boolean(true));
        }
        Some("no") => {
            when.insert("all_day".into(), Value::Boolean(false));
        }
        _ => {}
    }
    for (field, name) in [("min", "min_duration"), ("max", "max_duration")] {
        let d = get(&key(field)).unwrap_or("").trim();
        if !d.is_empty() {
            when.insert(name.into(), Value::String(d.to_owned()));
        }
    }
    let response = all(&key("response"));
    if !response.is_empty() {
        when.insert(
            "response".into(),
            Value::Array(response.into_iter().map(Value::String).collect()),
        );
    }
    if !when.is_empty() {
        rule.insert("when".into(), Value::Table(when));
    }
    rule.insert(
        "reason".into(),
        Value::String(get(&key("reason")).unwrap_or("").to_owned()),
    );
    rule.insert(
        "mode".into(),
        Value::String(get(&key("mode")).unwrap_or("info").to_owned()),
    );
    if get(&key("show_subject")).is_some() {
        rule.insert("show_subject".into(), Value::Boolean(true));
    }
    rule
}

/// The instance's settings from the form's fields.
fn settings_fields(table: &mut Table, pairs: &[(String, String)]) {
    let get = |k: &str| get(pairs, k);
    let all = |k: &str| all(pairs, k);
    if let Some(days) = get("days_ahead") {
        // A number, or the text as typed: the file's check then says what is wrong.
        let value = days
            .trim()
            .parse::<i64>()
            .map(Value::Integer)
            .unwrap_or_else(|_| Value::String(days.to_owned()));
        table.insert("days_ahead".into(), value);
    }
    if let Some(zone) = get("time_zone") {
        table.insert("time_zone".into(), Value::String(zone.trim().to_owned()));
    }
    if let Some(choice) = get("user_choice") {
        table.insert("user_choice".into(), Value::String(choice.to_owned()));
    }
    table.insert(
        "allowed_reasons".into(),
        Value::Array(all("allowed").into_iter().map(Value::String).collect()),
    );
    for flag in [
        "hide_titles",
        "show_subject",
        "ignore_declined",
        "write_back",
    ] {
        table.insert(flag.into(), Value::Boolean(get(flag).is_some()));
    }
    if let Some(private) = get("private") {
        table.insert("private".into(), Value::String(private.to_owned()));
    }
    // The checkbox turns them on or off; their reason and mode stay as the file has them.
    let mut replies = table
        .get("automatic_replies")
        .and_then(Value::as_table)
        .cloned()
        .unwrap_or_default();
    replies.insert(
        "enabled".into(),
        Value::Boolean(get("automatic_replies").is_some()),
    );
    table.insert("automatic_replies".into(), Value::Table(replies));
    if get("wh.start").is_some() {
        let mut wh = Table::new();
        wh.insert(
            "days".into(),
            Value::Array(all("wh.days").into_iter().map(Value::String).collect()),
        );
        wh.insert(
            "start".into(),
            Value::String(get("wh.start").unwrap_or("").to_owned()),
        );
        wh.insert(
            "end".into(),
            Value::String(get("wh.end").unwrap_or("").to_owned()),
        );
        table.insert("working_hours".into(), Value::Table(wh));
    }
}

/// The form for `settings` (or, after a mistake, for the file `text` the form was read
/// into, with `problem` beside the rule it names).
pub(crate) fn form(
    t: &Texts,
    lang: Lang,
    settings: &InstanceSettings,
    file: Option<&str>,
    problem: Option<&Problem>,
    manages: bool,
) -> Markup {
    let table = file
        .and_then(|x| x.parse::<Table>().ok())
        .unwrap_or_else(|| table_of(settings));
    let base = file.map_or_else(|| settings.to_toml(), str::to_owned);
    let rules: Vec<Table> = table
        .get("rules")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|r| r.as_table().cloned()).collect())
        .unwrap_or_default();
    let reasons: Vec<(String, String)> = settings
        .reasons
        .iter()
        .map(|r| {
            (
                r.code.as_str().to_owned(),
                match lang {
                    Lang::Sv => r.label_sv.clone(),
                    Lang::En => r.label_en.clone(),
                },
            )
        })
        .collect();
    let current_template = text_of(&table, "from_template").to_owned();
    let allowed = strings(table.get("allowed_reasons"));
    let wh = table
        .get("working_hours")
        .and_then(Value::as_table)
        .cloned()
        .unwrap_or_default();
    let wh_days = strings(wh.get("days"));
    let flag = |k: &str| table.get(k).and_then(Value::as_bool).unwrap_or(false);
    let replies_on = table
        .get("automatic_replies")
        .and_then(Value::as_table)
        .and_then(|r| r.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    html! {
        input type="hidden" name="base" value=(base);
        input type="hidden" name="rules" value=(rules.len());
        @if let Some(p) = problem { p.error role="alert" #form-error { (p.message) } }
        fieldset.template {
            legend { (t.template) }
            label for="template" { (t.start_from_template) }
            select #template name="template" {
                @for tpl in Template::ALL {
                    option value=(tpl.as_str()) selected[current_template == tpl.as_str()] { (template_label(lang, tpl)) }
                }
            }
            @if manages { " " button type="submit" name="op" value="template" { (t.use_template) } }
            p.muted { (t.template_hint) }
        }
        h2 { (t.rules) }
        p.muted { (t.rules_order_hint) }
        div #rule-rows {
            @for (i, rule) in rules.iter().enumerate() {
                @let when = rule.get("when").and_then(Value::as_table).cloned().unwrap_or_default();
                @let show_as = strings(when.get("show_as"));
                @let response = strings(when.get("response"));
                @let reason = text_of(rule, "reason");
                @let mode = text_of(rule, "mode");
                @let all_day = when.get("all_day").and_then(Value::as_bool);
                fieldset.rule id={ "rule-" (i) } .bad[problem.is_some_and(|p| p.rule == Some(i))] {
                    legend { (t.rule) " " (i + 1) }
                    div.row {
                        label { (t.rule_name) input type="text" name={ "r" (i) ".name" } value=(text_of(rule, "name")); }
                    }
                    div.row {
                        span.field-label { (t.rule_show_as) }
                        @for s in SHOW_AS {
                            label.check { input type="checkbox" name={ "r" (i) ".show_as" } value=(s) checked[show_as.iter().any(|x| x == s)]; " " (super::i18n::show_as(lang, s)) }
                        }
                    }
                    div.row.pair {
                        label { (t.rule_prefix) input type="text" name={ "r" (i) ".prefix" } value=(str_of(when.get("prefix"))) placeholder="LUN:"; }
                        label { (t.rule_categories) input type="text" name={ "r" (i) ".categories" } value=(strings(when.get("categories")).join(", ")); }
                    }
                    div.row.pair {
                        label { (t.rule_all_day)
                            select name={ "r" (i) ".all_day" } {
                                option value="" selected[all_day.is_none()] { (t.any) }
                                option value="yes" selected[all_day == Some(true)] { (t.all_day_only) }
                                option value="no" selected[all_day == Some(false)] { (t.timed_only) }
                            }
                        }
                        label { (t.rule_min) input type="text" name={ "r" (i) ".min" } value=(str_of(when.get("min_duration"))) placeholder="30m"; }
                        label { (t.rule_max) input type="text" name={ "r" (i) ".max" } value=(str_of(when.get("max_duration"))) placeholder="8h"; }
                    }
                    div.row {
                        span.field-label { (t.rule_response) }
                        @for r in RESPONSES {
                            label.check { input type="checkbox" name={ "r" (i) ".response" } value=(r) checked[response.iter().any(|x| x == r)]; " " (response_label(lang, r)) }
                        }
                    }
                    div.row.pair.outcome {
                        label { (t.reason)
                            select name={ "r" (i) ".reason" } {
                                @for (code, label) in &reasons {
                                    option value=(code) selected[code == reason] { (label) }
                                }
                            }
                        }
                        label { (t.mode)
                            select name={ "r" (i) ".mode" } {
                                option value="info" selected[mode == "info"] { (t.info) }
                                option value="divert" selected[mode == "divert"] { (t.divert) }
                            }
                        }
                        label.check { input type="checkbox" name={ "r" (i) ".show_subject" } value="on" checked[rule.get("show_subject").and_then(Value::as_bool) == Some(true)]; " " (t.rule_show_subject) }
                    }
                    @if manages {
                        div.row.moves {
                            button type="submit" name="op" value={ "up:" (i) } disabled[i == 0] aria-label={ (t.move_up) " " (i + 1) } { "↑ " (t.move_up) }
                            button type="submit" name="op" value={ "down:" (i) } disabled[i + 1 == rules.len()] aria-label={ (t.move_down) " " (i + 1) } { "↓ " (t.move_down) }
                            button type="submit" name="op" value={ "remove:" (i) } aria-label={ (t.remove) " " (t.rule) " " (i + 1) } { (t.remove) }
                        }
                    }
                }
            }
        }
        @if manages { button #add-rule type="submit" name="op" value="add" { "+ " (t.add_rule) } }
        h2 { (t.instance_settings) }
        fieldset.settings {
            div.row.pair {
                label { (t.days_ahead) input type="number" min="1" max="366" name="days_ahead" value=(table.get("days_ahead").and_then(Value::as_integer).unwrap_or(14)); }
                label { (t.time_zone) input type="text" name="time_zone" value=(text_of(&table, "time_zone")); }
            }
            div.row {
                span.field-label { (t.working_hours) }
                @for d in DAYS {
                    label.check { input type="checkbox" name="wh.days" value=(d) checked[wh_days.iter().any(|x| x == d)]; " " (day_label(lang, d)) }
                }
            }
            div.row.pair {
                label { (t.starts) input type="time" name="wh.start" value=(str_of(wh.get("start"))); }
                label { (t.ends) input type="time" name="wh.end" value=(str_of(wh.get("end"))); }
            }
            div.row {
                label { (t.user_choice)
                    select name="user_choice" {
                        @for (v, l) in [("off", t.user_choice_off), ("any", t.user_choice_any), ("restricted", t.user_choice_restricted)] {
                            option value=(v) selected[text_of(&table, "user_choice") == v] { (l) }
                        }
                    }
                }
            }
            div.row {
                span.field-label { (t.allowed_reasons) }
                @for (code, label) in &reasons {
                    label.check { input type="checkbox" name="allowed" value=(code) checked[allowed.iter().any(|a| a == code)]; " " (label) }
                }
            }
            div.row {
                label.check { input type="checkbox" name="hide_titles" value="on" checked[flag("hide_titles")]; " " (t.hide_titles) }
            }
            div.row {
                label.check { input type="checkbox" name="show_subject" value="on" checked[flag("show_subject")]; " " (t.show_subjects) }
            }
            div.row {
                label.check { input type="checkbox" name="ignore_declined" value="on" checked[flag("ignore_declined")]; " " (t.ignore_declined) }
            }
            div.row {
                label.check { input #automatic-replies type="checkbox" name="automatic_replies" value="on" checked[replies_on]; " " (t.automatic_replies) }
            }
            div.row {
                label.check { input #write-back type="checkbox" name="write_back" value="on" checked[flag("write_back")]; " " (t.write_back) }
            }
            div.row {
                label { (t.private_bookings)
                    select name="private" {
                        option value="skip" selected[text_of(&table, "private") == "skip"] { (t.private_skip) }
                        option value="anonymous" selected[text_of(&table, "private") == "anonymous"] { (t.private_anonymous) }
                    }
                }
            }
        }
    }
}

fn text_of<'a>(table: &'a Table, key: &str) -> &'a str {
    str_of(table.get(key))
}
