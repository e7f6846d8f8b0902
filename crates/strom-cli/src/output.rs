//! Printing of command results: aligned text tables for people and JSON for scripts.
//!
//! Every client command builds its result as plain data first, then hands it either to a
//! [`Table`] or to [`print_json`]; this module owns only the layout, never what is shown.

use std::io::{self, Write};

use serde::Serialize;

/// A text table with a header row; columns are left-aligned and padded to their widest cell.
///
/// The header is printed in upper case as given (`NAME`, `PARTITIONS`), like `kafka-topics.sh`
/// and `rpk` do, so output stays familiar to Kafka users.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Starts a table with the given column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|title| (*title).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends one row; it must have exactly as many cells as the header has titles.
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(
            cells.len(),
            self.header.len(),
            "a table row has one cell per column"
        );
        self.rows.push(cells);
    }

    /// Renders the table, one line per row, with two spaces between columns and no trailing
    /// whitespace.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|title| title.len()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if index + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let padding = width - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', padding));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Writes the rendered table to standard output.
    pub fn print(&self) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        stdout.write_all(self.render().as_bytes())?;
        stdout.flush()
    }
}

/// Prints `value` as pretty JSON followed by a newline on standard output.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

/// Joins broker ids the way Kafka's tools show replica lists: `1,2,3`.
pub fn join_ids(ids: &[i32]) -> String {
    ids.iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_to_the_widest_cell() {
        let mut table = Table::new(&["NAME", "PARTITIONS"]);
        table.row(vec!["orders".into(), "3".into()]);
        table.row(vec!["a".into(), "12".into()]);
        assert_eq!(
            table.render(),
            "NAME    PARTITIONS\norders  3\na       12\n"
        );
    }

    #[test]
    fn join_ids_uses_commas() {
        assert_eq!(join_ids(&[1, 2, 3]), "1,2,3");
        assert_eq!(join_ids(&[]), "");
    }
}
