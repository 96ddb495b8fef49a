//! (being written) AST -> Config.
use std::path::Path;

use super::ast::Directive;
use super::error::{ConfigError, ConfigWarning};
use super::Config;

pub fn build(file: &Path, tree: &[Directive]) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let _ = (file, tree);
    Err(ConfigError::without_span("builder not yet landed"))
}
