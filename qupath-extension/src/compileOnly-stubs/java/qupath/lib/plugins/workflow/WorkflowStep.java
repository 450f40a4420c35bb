package qupath.lib.plugins.workflow;

/** Stand-in: qupath-core WorkflowStep. */
public interface WorkflowStep {
    String getName();
}
