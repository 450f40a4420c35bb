package qupath.lib.gui;

import java.awt.image.BufferedImage;
import javafx.scene.control.Menu;
import javafx.stage.Stage;
import qupath.lib.gui.viewer.QuPathViewer;
import qupath.lib.images.ImageData;
import qupath.lib.projects.Project;

/** Stand-in: qupath-gui-fx QuPathGUI (the methods the glue calls). */
public class QuPathGUI {
    public static QuPathGUI getInstance() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public Menu getMenu(String name, boolean createMenu) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public QuPathViewer getViewer() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public ImageData<BufferedImage> getImageData() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public Project<BufferedImage> getProject() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public Stage getStage() { throw new UnsupportedOperationException("compile-only stand-in"); }
}
