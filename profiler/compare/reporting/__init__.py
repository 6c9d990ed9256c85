"""What `report` and `compare` draw and write: labels, figures, the HTML report and trace-event export."""
