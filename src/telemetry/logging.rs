use std::str::FromStr;

use tracing_subscriber::EnvFilter;

use super::TelemetryError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    #[default]
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

impl FromStr for LogFormat {
    type Err = TelemetryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            _ => Err(TelemetryError::UnknownLogFormat(s.to_owned())),
        }
    }
}

/// Installs the global tracing subscriber.
///
/// Logs go to stderr so that subcommands printing to stdout (`crds`, `plan`) stay
/// pipeable. A second call keeps the first subscriber and succeeds, which lets tests and
/// embedded uses call this freely.
pub fn init_logging(format: LogFormat, filter: &str) -> Result<(), TelemetryError> {
    let env_filter =
        EnvFilter::try_new(filter).map_err(|source| TelemetryError::InvalidLogFilter {
            filter: filter.to_owned(),
            source,
        })?;
    let installed = match format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(env_filter)
            .with_writer(std::io::stderr)
            .try_init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(env_filter)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    if installed.is_err() {
        tracing::debug!("a global tracing subscriber is already installed; keeping it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_init_is_harmless() {
        // "off" keeps the global subscriber these tests install from cluttering other tests.
        init_logging(LogFormat::Text, "off").unwrap();
        init_logging(LogFormat::Json, "causeway=debug,kube=info").unwrap();
    }

    #[test]
    fn bad_filter_is_an_error() {
        let err = init_logging(LogFormat::Json, "causeway=loud").unwrap_err();
        assert!(
            matches!(err, TelemetryError::InvalidLogFilter { .. }),
            "{err}"
        );
    }

    #[test]
    fn parses_formats() {
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert!("yaml".parse::<LogFormat>().is_err());
    }
}
