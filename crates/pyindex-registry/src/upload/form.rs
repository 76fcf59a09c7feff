//! The text fields of a legacy upload form.
//!
//! Clients disagree on details (standards G4-G6): pdm sends every absent field as an empty
//! string, setuptools-era tools send `UNKNOWN`, and unknown fields come and go with client
//! versions. Empty and `UNKNOWN` values count as absent; unknown fields are ignored.

use std::collections::HashMap;

use crate::RegistryError;

/// The text fields of an upload, by name.
#[derive(Debug, Default)]
pub struct Form {
    fields: HashMap<String, Vec<String>>,
}

impl Form {
    /// Collects `(name, value)` pairs, dropping empty and `UNKNOWN` values.
    pub fn new(pairs: Vec<(String, String)>) -> Form {
        let mut fields: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in pairs {
            let value = value.trim();
            if value.is_empty() || value == "UNKNOWN" {
                continue;
            }
            fields.entry(name).or_default().push(value.to_owned());
        }
        Form { fields }
    }

    /// The value of a single-use field; sending it twice is an error.
    pub fn single(&self, name: &str) -> Result<Option<&str>, RegistryError> {
        match self.fields.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([value]) => Ok(Some(value)),
            Some(_) => Err(RegistryError::bad_request(format!(
                "The field '{name}' was given more than once; it takes a single value."
            ))),
        }
    }

    /// The value of a required single-use field.
    pub fn required(&self, name: &str) -> Result<&str, RegistryError> {
        self.single(name)?.ok_or_else(|| {
            RegistryError::bad_request(format!("The required field '{name}' is missing."))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form::new(
            pairs
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    #[test]
    fn empty_and_unknown_values_are_absent() {
        let f = form(&[
            ("summary", ""),
            ("license", "UNKNOWN"),
            ("name", " shared "),
        ]);
        assert_eq!(f.single("summary").unwrap(), None);
        assert_eq!(f.single("license").unwrap(), None);
        assert_eq!(f.single("name").unwrap(), Some("shared"));
    }

    #[test]
    fn single_use_field_twice_is_refused() {
        let f = form(&[("version", "1"), ("version", "2")]);
        let err = f.single("version").unwrap_err().to_string();
        assert!(err.contains("'version' was given more than once"), "{err}");
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = form(&[]).required("name").unwrap_err().to_string();
        assert_eq!(err, "The required field 'name' is missing.");
    }
}
