//! What `import` did per shop, the `--dry-run` table, the summary line and
//! the exit code. Pure data, no network; nothing here ever sees a token.

use std::fmt;

/// What happened (or, in a dry run, would happen) to one shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// New objects (or, without `--apply`, manifests written).
    Create,
    /// Existing objects changed to match the import.
    Update,
    /// Existing objects already match; nothing written.
    Unchanged,
    /// The cluster holds something else for this shop (another token, a
    /// field owned by another manager); nothing written.
    Conflict,
    /// The row (or the apiserver) rejected the shop; nothing written.
    Skipped,
}

impl Action {
    /// The word in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Conflict => "conflict",
            Action::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The shop (domain, or the row's shop value as printable).
    pub shop: String,
    /// The ShopifyShop's name, `-` when there is none.
    pub name: String,
    /// What happened.
    pub action: Action,
    /// Why, for anything but a plain create; may be empty.
    pub reason: String,
}

/// Exit status: every shop written or unchanged.
pub const EXIT_OK: u8 = 0;
/// Exit status: a fatal error, nothing (more) done.
pub const EXIT_FATAL: u8 = 1;
/// Exit status: some rows skipped or in conflict, the others done.
pub const EXIT_PARTIAL: u8 = 2;

/// Counts by kind, for the summary line and the exit code.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Created or updated.
    pub imported: usize,
    /// Already up to date.
    pub unchanged: usize,
    /// Skipped or in conflict.
    pub skipped: usize,
}

impl Summary {
    /// Counts `outcomes`.
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut s = Self::default();
        for o in outcomes {
            match o.action {
                Action::Create | Action::Update => s.imported += 1,
                Action::Unchanged => s.unchanged += 1,
                Action::Conflict | Action::Skipped => s.skipped += 1,
            }
        }
        s
    }

    /// `imported N, unchanged M, skipped K`, with a note in a dry run.
    pub fn line(&self, dry_run: bool) -> String {
        let note = if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        };
        format!(
            "imported {}, unchanged {}, skipped {}{note}",
            self.imported, self.unchanged, self.skipped
        )
    }

    /// [`EXIT_PARTIAL`] if anything was skipped, else [`EXIT_OK`].
    pub fn exit_code(&self) -> u8 {
        if self.skipped > 0 { EXIT_PARTIAL } else { EXIT_OK }
    }
}

/// The table: `SHOP NAME ACTION REASON`, columns padded to their widest cell.
pub fn table(outcomes: &[Outcome]) -> String {
    let header = ["SHOP", "NAME", "ACTION", "REASON"];
    let rows: Vec<[&str; 4]> = outcomes
        .iter()
        .map(|o| {
            [
                o.shop.as_str(),
                o.name.as_str(),
                o.action.as_str(),
                o.reason.as_str(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows) {
        let line = format!(
            "{:<w0$}   {:<w1$}   {:<w2$}   {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(shop: &str, name: &str, action: Action, reason: &str) -> Outcome {
        Outcome {
            shop: shop.into(),
            name: name.into(),
            action,
            reason: reason.into(),
        }
    }

    #[test]
    fn the_table_aligns_columns() {
        let t = table(&[
            o("a.myshopify.com", "a", Action::Create, ""),
            o(
                "long-name.myshopify.com",
                "long-name",
                Action::Conflict,
                "different token",
            ),
        ]);
        assert_eq!(
            t,
            "SHOP                      NAME        ACTION     REASON\n\
             a.myshopify.com           a           create\n\
             long-name.myshopify.com   long-name   conflict   different token\n"
        );
    }

    #[test]
    fn summary_counts_and_exit_codes() {
        let all_good = [
            o("a", "a", Action::Create, ""),
            o("b", "b", Action::Update, ""),
            o("c", "c", Action::Unchanged, ""),
        ];
        let s = Summary::of(&all_good);
        assert_eq!(s.line(false), "imported 2, unchanged 1, skipped 0");
        assert_eq!(s.exit_code(), EXIT_OK);
        let partial = [
            o("a", "a", Action::Create, ""),
            o("b", "-", Action::Skipped, "empty token"),
        ];
        assert_eq!(Summary::of(&partial).exit_code(), EXIT_PARTIAL);
        let conflict = [o("a", "a", Action::Conflict, "x")];
        let s = Summary::of(&conflict);
        assert_eq!(s.exit_code(), EXIT_PARTIAL);
        assert_eq!(
            s.line(true),
            "imported 0, unchanged 0, skipped 1 (dry run: nothing written)"
        );
        assert_eq!(Summary::of(&[]).exit_code(), EXIT_OK);
    }
}
