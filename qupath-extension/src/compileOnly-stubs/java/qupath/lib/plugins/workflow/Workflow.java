package qupath.lib.plugins.workflow;

/** Stand-in: qupath-core Workflow (an image's command history). */
public class Workflow {
    public void addStep(WorkflowStep step) { throw new UnsupportedOperationException("compile-only stand-in"); }
}
