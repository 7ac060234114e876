//! A small, strict command-line parser: `--name value`, `--name=value`, bare `--flag`s and
//! positionals. Unknown options are errors, so a typo never silently changes a code.

use std::collections::BTreeMap;

/// Parsed arguments of one subcommand.
pub struct Args {
    values: BTreeMap<String, String>,
    flags: Vec<String>,
    positionals: Vec<String>,
}

impl Args {
    /// Parses `raw`, accepting only the options in `with_value` (which take a value) and
    /// `flags` (which do not).
    pub fn parse(raw: &[String], with_value: &[&str], flags: &[&str]) -> Result<Self, String> {
        let mut args = Self {
            values: BTreeMap::new(),
            flags: Vec::new(),
            positionals: Vec::new(),
        };
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                args.positionals.push(arg.clone());
                continue;
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (name, None),
            };
            if with_value.contains(&name) {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("--{name} needs a value"))?,
                };
                if args.values.insert(name.to_owned(), value).is_some() {
                    return Err(format!("--{name} given twice"));
                }
            } else if flags.contains(&name) && inline.is_none() {
                args.flags.push(name.to_owned());
            } else {
                return Err(format!("unknown option --{name}"));
            }
        }
        Ok(args)
    }

    /// The value of `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `--name`, or an error saying it is required.
    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.value(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    /// `--name` parsed as a number, if given.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.value(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| format!("--{name}: {v:?} is not a valid number"))
            })
            .transpose()
    }

    /// Whether the bare flag `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// Positional arguments, in order.
    pub fn positionals(&self) -> &[String] {
        &self.positionals
    }
}
