//! Scraping a metrics listener: Prometheus's text exposition format parsed
//! into samples (escaped label values, `+Inf`/`NaN`, optional timestamps),
//! and sums over the samples that match some labels.

use std::collections::BTreeMap;

/// One line of a scrape: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A scrape: its samples and the `# TYPE` of each metric family.
#[derive(Debug, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    pub types: BTreeMap<String, String>,
    /// The raw text, for `promtool check metrics`.
    pub text: String,
}

impl Scrape {
    /// `GET <url>/metrics`.
    pub async fn get(url: &str) -> Self {
        let response = reqwest::get(format!("{url}/metrics")).await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        Self::parse(&response.text().await.unwrap())
    }

    /// Parses the text format; panics on a malformed line (a test failure).
    pub fn parse(text: &str) -> Self {
        let mut scrape = Self {
            text: text.to_owned(),
            ..Self::default()
        };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                if words.next() == Some("TYPE") {
                    let (name, kind) = (words.next().unwrap(), words.next().unwrap());
                    scrape.types.insert(name.to_owned(), kind.to_owned());
                }
                continue;
            }
            scrape.samples.push(sample(line));
        }
        scrape
    }

    /// The sum of the samples named `name` whose labels include `labels`
    /// (0 when none match).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// The samples named `name` whose labels include `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Every label value of every sample.
    pub fn label_values(&self) -> impl Iterator<Item = &str> {
        self.samples
            .iter()
            .flat_map(|s| s.labels.values().map(String::as_str))
    }
}

fn sample(line: &str) -> Sample {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or_else(|| panic!("no value: {line:?}"));
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels).unwrap_or_else(|| panic!("bad labels: {line:?}"));
    }
    let value = rest
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no value: {line:?}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line:?}")),
    };
    Sample {
        name,
        labels,
        value,
    }
}

/// Reads `k="v",…}` into `labels`; returns what follows the `}`.
fn parse_labels<'a>(mut text: &'a str, labels: &mut BTreeMap<String, String>) -> Option<&'a str> {
    loop {
        text = text.trim_start_matches([' ', ',']);
        if let Some(rest) = text.strip_prefix('}') {
            return Some(rest);
        }
        let (key, after) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        text = &after[end + 1..];
    }
}

/// Records clients have written to each collection of a storage node whose
/// metrics listener is at `url`, since its process started (migration
/// imports are not counted: no client wrote them).
pub async fn records_written_by_collection(url: &str) -> BTreeMap<String, f64> {
    let scrape = Scrape::get(url).await;
    let mut written = BTreeMap::new();
    for sample in scrape.matching("sync_storage_records_written_total", &[]) {
        let collection = sample.labels["collection"].clone();
        *written.entry(collection).or_default() += sample.value;
    }
    written
}

/// The same, all collections together.
pub async fn records_written(url: &str) -> f64 {
    records_written_by_collection(url).await.values().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_text_format() {
        let scrape = Scrape::parse(
            "# HELP a_total A \"thing\".\n# TYPE a_total counter\n\
             a_total{route=\"/1.5/{uid}\",q=\"say \\\"hi\\\"\\n\\\\\"} 3 1700000000\n\
             b_bucket{le=\"+Inf\"} 2\nc NaN\nd -Inf\n",
        );
        assert_eq!(scrape.types["a_total"], "counter");
        assert_eq!(scrape.sum("a_total", &[("route", "/1.5/{uid}")]), 3.0);
        assert_eq!(scrape.samples[0].labels["q"], "say \"hi\"\n\\");
        assert_eq!(scrape.sum("b_bucket", &[("le", "+Inf")]), 2.0);
        assert!(scrape.samples[2].value.is_nan());
        assert_eq!(scrape.samples[3].value, f64::NEG_INFINITY);
        assert_eq!(scrape.sum("a_total", &[("route", "other")]), 0.0);
    }
}
